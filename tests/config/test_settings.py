from pathlib import Path

import pytest

from config import DEFAULT_API_KEY, DEFAULT_JWT_SECRET, ConfigError, load_config


def test_defaults_are_a_single_in_memory_dev_node() -> None:
    settings = load_config(environ={})
    assert settings.port == 8080
    assert settings.mode == "dev"
    assert settings.in_memory
    assert settings.api_key == DEFAULT_API_KEY
    assert settings.data_dir == Path("data")


def test_environment_overrides_file_which_overrides_defaults(tmp_path: Path) -> None:
    config_file = tmp_path / "fairwire.toml"
    config_file.write_text('port = 9000\napi_key = "from-file"\ndata_dir = "/srv/fw"\n')
    settings = load_config(
        environ={"FAIRWIRE_CONFIG": str(config_file), "FAIRWIRE_API_KEY": "from-env"}
    )
    assert settings.port == 9000
    assert settings.api_key == "from-env"
    assert settings.data_dir == Path("/srv/fw")


def test_settings_are_frozen() -> None:
    settings = load_config(environ={})
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"FAIRWIRE_PORT": "eighty"}, "FAIRWIRE_PORT"),
        ({"FAIRWIRE_PORT": "70000"}, "FAIRWIRE_PORT"),
        ({"FAIRWIRE_EVENT_LOG_MAX_EVENTS": "3"}, "FAIRWIRE_EVENT_LOG_MAX_EVENTS"),
        ({"FAIRWIRE_EVENT_LOG_MAX_AGE": "an hour"}, "FAIRWIRE_EVENT_LOG_MAX_AGE"),
        ({"FAIRWIRE_MODE": "staging"}, "FAIRWIRE_MODE"),
        ({"FAIRWIRE_SESSION_TTL": "5"}, "FAIRWIRE_SESSION_TTL"),
        ({"FAIRWIRE_CLOCK_SKEW": "-1"}, "FAIRWIRE_CLOCK_SKEW"),
        ({"FAIRWIRE_GUEST_TOKEN_TTL": "soon"}, "FAIRWIRE_GUEST_TOKEN_TTL"),
        ({"FAIRWIRE_GUEST_TOKENS_PER_MINUTE": "0"}, "FAIRWIRE_GUEST_TOKENS_PER_MINUTE"),
        ({"FAIRWIRE_LIVE_GRACE": "true"}, "FAIRWIRE_LIVE_GRACE"),
        ({"FAIRWIRE_REDIS_URL": "http://localhost"}, "FAIRWIRE_REDIS_URL"),
        ({"FAIRWIRE_API_KEY": ""}, "FAIRWIRE_API_KEY"),
        ({"FAIRWIRE_LOG_LEVEL": "LOUD"}, "FAIRWIRE_LOG_LEVEL"),
        ({"FAIRWIRE_ICE_SERVERS": "http://x"}, "FAIRWIRE_ICE_SERVERS"),
        ({"FAIRWIRE_MEDIA_PORT": "65536"}, "FAIRWIRE_MEDIA_PORT"),
        ({"FAIRWIRE_TRANSLATORS": "apertium,babelfish"}, "FAIRWIRE_TRANSLATORS"),
        ({"FAIRWIRE_TRANSLATORS": "libretranslate"}, "FAIRWIRE_LIBRETRANSLATE_URL"),
        ({"FAIRWIRE_TRANSLATORS": "deepl"}, "FAIRWIRE_DEEPL_API_KEY"),
        ({"FAIRWIRE_LIBRETRANSLATE_URL": "ftp://x"}, "FAIRWIRE_LIBRETRANSLATE_URL"),
        ({"FAIRWIRE_TRANSLATION_TIMEOUT_MS": "10"}, "FAIRWIRE_TRANSLATION_TIMEOUT_MS"),
        ({"FAIRWIRE_GLOSSARY": "/nonexistent/glossary.toml"}, "FAIRWIRE_GLOSSARY"),
        ({"FAIRWIRE_MEDIA_HOST": "::1"}, "FAIRWIRE_MEDIA_HOST"),
        ({"FAIRWIRE_MEDIA_HOST": "media.example"}, "FAIRWIRE_MEDIA_HOST"),
        ({"FAIRWIRE_CONFIG": "/nonexistent/fw.toml"}, "FAIRWIRE_CONFIG"),
    ],
)
def test_a_bad_value_names_the_setting(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(environ=environ)
    assert str(caught.value).startswith(named)
    assert "\n" not in str(caught.value)


def test_unknown_file_setting_is_refused(tmp_path: Path) -> None:
    config_file = tmp_path / "fairwire.toml"
    config_file.write_text("prot = 80\n")
    with pytest.raises(ConfigError, match="unknown setting 'prot'"):
        load_config(config_file, environ={})


def test_invalid_toml_is_refused(tmp_path: Path) -> None:
    config_file = tmp_path / "fairwire.toml"
    config_file.write_text("port = = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(config_file, environ={})


def test_production_refuses_default_secret_and_key() -> None:
    strong = "s" * 40
    with pytest.raises(ConfigError, match="FAIRWIRE_JWT_SECRET"):
        load_config(environ={"FAIRWIRE_MODE": "production", "FAIRWIRE_API_KEY": "k" * 32})
    with pytest.raises(ConfigError, match="FAIRWIRE_API_KEY"):
        load_config(environ={"FAIRWIRE_MODE": "production", "FAIRWIRE_JWT_SECRET": strong})
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        load_config(environ={"FAIRWIRE_MODE": "production", "FAIRWIRE_JWT_SECRET": "short",
                             "FAIRWIRE_API_KEY": "k" * 32})
    settings = load_config(
        environ={"FAIRWIRE_MODE": "production", "FAIRWIRE_JWT_SECRET": strong,
                 "FAIRWIRE_API_KEY": "k" * 32}
    )
    assert settings.mode == "production"
    assert settings.jwt_secret != DEFAULT_JWT_SECRET


def test_lists_from_environment() -> None:
    settings = load_config(
        environ={"FAIRWIRE_ICE_SERVERS": "stun:stun.example.org:3478, turn:turn.example.org"}
    )
    assert settings.ice_servers == ("stun:stun.example.org:3478", "turn:turn.example.org")


def test_a_first_run_listens_on_this_machine_only_and_production_everywhere() -> None:
    assert load_config(environ={}).host == "127.0.0.1"
    assert load_config(environ={}).listen_url == "http://127.0.0.1:8080"
    production = {"FAIRWIRE_MODE": "production", "FAIRWIRE_API_KEY": "k" * 20,
                  "FAIRWIRE_JWT_SECRET": "s" * 40}
    assert load_config(environ=production).host == "0.0.0.0"
    assert load_config(environ={"FAIRWIRE_HOST": "0.0.0.0"}).all_interfaces
    assert load_config(environ={"FAIRWIRE_HOST": "::1"}).listen_url == "http://[::1]:8080"


def test_links_outlast_a_fair_and_sessions_are_short() -> None:
    settings = load_config(environ={})
    assert settings.token_max_ttl == 30 * 24 * 3600
    assert (settings.session_ttl, settings.clock_skew, settings.live_grace) == (120, 30, 60)
    assert (settings.guest_token_ttl, settings.guest_tokens_per_minute) == (3600, 10)
    tuned = load_config(environ={"FAIRWIRE_SESSION_TTL": "10", "FAIRWIRE_LIVE_GRACE": "0"})
    assert (tuned.session_ttl, tuned.live_grace) == (10, 0)


def test_the_media_port_and_its_address_come_from_the_environment() -> None:
    assert (load_config(environ={}).media_host, load_config(environ={}).media_port) == (
        "0.0.0.0", 0)
    settings = load_config(environ={"FAIRWIRE_MEDIA_PORT": "7882",
                                    "FAIRWIRE_MEDIA_HOST": "192.0.2.10"})
    assert (settings.media_host, settings.media_port) == ("192.0.2.10", 7882)


def test_translators_come_in_order_of_preference_with_what_they_need() -> None:
    assert load_config(environ={}).translators == ("apertium",)
    settings = load_config(environ={
        "FAIRWIRE_TRANSLATORS": "deepl,libretranslate,apertium",
        "FAIRWIRE_DEEPL_API_KEY": "k:fx", "FAIRWIRE_LIBRETRANSLATE_URL": "http://lt:5000/"})
    assert settings.translators == ("deepl", "libretranslate", "apertium")
    assert settings.libretranslate_url == "http://lt:5000"
