from browser import browser, new_page  # noqa: F401
from redis_service import redis_store_url, redis_url  # noqa: F401
from server_process import fairwire_server, fairwire_server_factory  # noqa: F401
