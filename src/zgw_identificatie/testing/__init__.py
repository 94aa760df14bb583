"""In-memory recording fakes of every port, for unit tests (each adapter area has its module)."""
