"""One module per flow of the VNG guide (§2.1, §2.2, §2.3) plus the shared registration step."""
