import os
import urllib.parse

import psycopg2
import redis


def db():
    return psycopg2.connect(os.environ["DATABASE_URL"])


def cache():
    url = urllib.parse.urlparse(os.environ["REDIS_URL"])
    return redis.Redis(host=url.hostname, port=url.port,
                       password=urllib.parse.unquote(url.password or ""))
