from shared.infra.runtime import serve

from services.dispute.app import build

serve(build())
