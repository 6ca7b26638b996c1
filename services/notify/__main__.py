from services.notify.app import build
from shared.infra.runtime import serve

serve(build())
