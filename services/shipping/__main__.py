from services.shipping.app import build
from shared.infra.runtime import serve

serve(build())
