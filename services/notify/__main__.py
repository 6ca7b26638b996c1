from shared.infra.runtime import serve

from services.notify.app import build

serve(build())
