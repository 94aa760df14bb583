"""Stand-ins for a laptop: the DigiD simulator and the ZGW sandbox.

Never imported by production wiring; each refuses to start when ``ZGWID_ENV=production``.
"""


class DemoInProduction(RuntimeError):
    pass


def refuse_in_production(settings: object) -> None:
    if getattr(settings, "env", "development") == "production":
        raise DemoInProduction("the demo stand-ins refuse to run with ZGWID_ENV=production")
