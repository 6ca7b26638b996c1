from services.dispute.app import build
from shared.infra.runtime import serve

serve(build())
