from shared.infra.runtime import serve

from services.order.app import build

serve(build())
