"""API keys of LLM endpoints: typed into the form and stored encrypted, or named secrets an administrator placed.

A user can make the site use only secrets placed for that purpose: a key they typed (Fernet-encrypted
with ``FIELD_ENCRYPTION_KEYS``), a file directly inside ``ENDPOINT_SECRETS_DIR``, or the environment
variable ``ENDPOINT_SECRETS_ENV_PREFIX`` + name. Every message here names only the secret's name and a
generic reason: never a path outside the folder, never any part of what a file holds.
"""

from __future__ import annotations

import os
import re
import stat
from functools import lru_cache

from django.conf import settings

from runs.messages import Message

# Letters, digits, _ . - ; no slash, no leading dot (no "..", no hidden files), at most 100 characters.
SECRET_NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")
MAX_SECRET_BYTES = 8 * 1024
MAX_KEY_CHARS = 4096
# What an HTTP Authorization header can carry: printable ASCII, no spaces or control characters.
_KEY_RE = re.compile(r"[\x21-\x7e]+")


class SecretMissing(Exception):
    """A secret that cannot be used here; the message is safe to show (it names the secret, nothing more)."""


class EncryptionNotConfigured(SecretMissing):
    """No FIELD_ENCRYPTION_KEY: typed keys can be neither stored nor read."""


def _shown(name: str) -> str:
    """A user-given name as messages quote it: cut short, one line."""
    text = "".join(c if c.isprintable() else "?" for c in str(name))
    return text if len(text) <= 100 else text[:99] + "…"


def secret_name_check(name: str) -> str:
    """``name`` if it is a valid secret name, else SecretMissing saying what a name may hold."""
    if not isinstance(name, str) or not SECRET_NAME_RE.fullmatch(name):
        raise SecretMissing(Message("secret.bad_name", name=_shown(name)))
    return name


def key_text_check(value: str, *, name: str | None = None) -> str:
    """An API key as an HTTP header can carry it: one line of printable ASCII, at most MAX_KEY_CHARS.
    ``name``: the secret it came from, for the message (None: a key typed into the form)."""
    if len(value) <= MAX_KEY_CHARS and _KEY_RE.fullmatch(value):
        return value
    if name is None:
        raise SecretMissing(Message("secret.bad_key", n=MAX_KEY_CHARS))
    raise SecretMissing(Message("secret.not_a_key", name=_shown(name), n=MAX_KEY_CHARS))


def secret_file_read(name: str) -> str:
    """The key in the file ``name`` directly inside ENDPOINT_SECRETS_DIR; links out of the folder are refused."""
    secret_name_check(name)
    folder = settings.ENDPOINT_SECRETS_DIR
    if not folder:
        raise SecretMissing(Message("secret.files_off"))
    root = os.path.realpath(folder)
    real = os.path.realpath(os.path.join(root, name))
    # A link is followed only while it stays inside the folder (Kubernetes mounts secrets as links into
    # a ..data folder next to them); the final open refuses a link swapped in since.
    if real == root or os.path.commonpath([root, real]) != root:
        raise SecretMissing(Message("secret.not_in_folder", name=name))
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SecretMissing(Message("secret.no_file", name=name)) from None
    except OSError:
        raise SecretMissing(Message("secret.unreadable", name=name)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SecretMissing(Message("secret.not_in_folder", name=name))
        if info.st_size > MAX_SECRET_BYTES:
            raise SecretMissing(Message("secret.too_large", name=name, kb=MAX_SECRET_BYTES // 1024))
        data = os.read(fd, MAX_SECRET_BYTES + 1)
    except OSError:
        raise SecretMissing(Message("secret.unreadable", name=name)) from None
    finally:
        os.close(fd)
    if len(data) > MAX_SECRET_BYTES:
        raise SecretMissing(Message("secret.too_large", name=name, kb=MAX_SECRET_BYTES // 1024))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretMissing(Message("secret.not_text", name=name)) from None
    return _secret_text(text, name=name)


def secret_env_read(name: str) -> str:
    """The key in the environment variable ENDPOINT_SECRETS_ENV_PREFIX + ``name``; never any other variable."""
    secret_name_check(name)
    prefix = settings.ENDPOINT_SECRETS_ENV_PREFIX
    if not prefix:
        raise SecretMissing(Message("secret.env_off"))
    value = os.environ.get(prefix + name)
    if value is None:
        raise SecretMissing(Message("secret.no_env", name=name))
    return _secret_text(value, name=name)


def _secret_text(text: str, *, name: str) -> str:
    text = text.strip()
    if not text:
        raise SecretMissing(Message("secret.empty", name=name))
    return key_text_check(text, name=name)


# -- keys typed into the form ------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]):
    from cryptography.fernet import Fernet, MultiFernet

    return MultiFernet([Fernet(key.encode()) for key in keys])


def fernet():
    """The MultiFernet of FIELD_ENCRYPTION_KEYS (the first encrypts; every one decrypts)."""
    keys = tuple(settings.FIELD_ENCRYPTION_KEYS)
    if not keys:
        raise EncryptionNotConfigured(Message("secret.no_encryption_key"))
    try:
        return _fernet(keys)
    except ValueError:
        raise EncryptionNotConfigured(Message("secret.bad_encryption_key")) from None


def key_encrypt(plain: str) -> str:
    return fernet().encrypt(plain.encode()).decode()


def key_decrypt(token: str, *, endpoint_name: str) -> str:
    from cryptography.fernet import InvalidToken

    try:
        return fernet().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError, UnicodeDecodeError):
        raise SecretMissing(Message("secret.undecryptable", endpoint=endpoint_name)) from None


def key_rotate(token: str) -> str:
    """``token`` re-encrypted with the first key (after a new key was put first in FIELD_ENCRYPTION_KEY)."""
    return fernet().rotate(token.encode()).decode()
