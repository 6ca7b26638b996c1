import uvicorn

from shared.infra.logging import configure_logging

from services.console.app import build
from services.console.settings import ConsoleSettings

settings = ConsoleSettings()
configure_logging("console", settings.log_level, settings.log_format)
uvicorn.run(build(settings), host=settings.http_host, port=settings.http_port,
            log_level=settings.log_level.lower(), log_config=None, access_log=False,
            use_colors=False)
