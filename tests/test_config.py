"""catalog.toml validation, the environment, and the generated template."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

import pytest

from catalog_gen.config import (
    Config,
    api_access,
    config_template,
    documented_keys,
    load_config,
    public_base_url,
)
from catalog_gen.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalog.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file():
    config = load_config(None)
    assert config.timezone == "Europe/Oslo"
    assert config.frontcore.rate_limit == 4.0
    assert config.sync.reference_ttl_days == 7.0
    assert config.keep_snapshots == 5


def test_values_are_read_and_paths_resolved_against_the_file(tmp_path):
    path = write(
        tmp_path,
        'snapshot_dir = "data/snaps"\n[frontcore]\nrate_limit = 2\n[sync]\nbatch_size = 50\n',
    )
    config = load_config(path)
    assert config.frontcore.rate_limit == 2.0  # an integer is a fine number
    assert config.sync.batch_size == 50
    assert config.snapshot_path == tmp_path.resolve() / "data" / "snaps"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 1\n", "unknown key 'colour'"),
        ("[frontcore]\nrate = 3\n", "unknown key 'frontcore.rate'"),
        ('keep_snapshots = "5"\n', "'keep_snapshots' must be an integer, not a string"),
        ("keep_snapshots = true\n", "'keep_snapshots' must be an integer, not true or false"),
        ("[frontcore]\nrate_limit = 6\n", "'frontcore.rate_limit' must be between 0.1 and 5"),
        ('timezone = "Mars/Olympus"\n', "'timezone' must be an IANA time zone"),
        ("frontcore = 3\n", "[frontcore] must be a table"),
        ("rate_limit = [\n", "not valid TOML"),
        ("[publish]\ndate_status = 7\n", "'publish.date_status' must be a table, not an integer"),
        (
            '[publish]\ndate_status = { seven = "scheduled" }\n',
            "'publish.date_status' has the key 'seven'; its keys must be whole numbers",
        ),
        (
            '[publish]\ndate_status = { 7 = "maybe" }\n',
            "'publish.date_status.7' must be one of 'scheduled', 'tbd', 'canceled', 'postponed'",
        ),
        ("[publish]\ndate_status = { 7 = 2 }\n", "'publish.date_status.7' must be a string"),
    ],
)
def test_bad_config_is_one_line_naming_key_and_file(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 2


def test_date_status_maps_status_ids_given_as_toml_keys(tmp_path):
    inline = load_config(write(tmp_path, '[publish]\ndate_status = { 7 = "scheduled" }\n'))
    table = load_config(write(tmp_path, '[publish.date_status]\n7 = "scheduled"\n9 = "tbd"\n'))
    assert inline.publish.date_status == {7: "scheduled"}
    assert table.publish.date_status == {7: "scheduled", 9: "tbd"}
    assert hash(table) != hash(inline)  # a frozen value like every setting
    with pytest.raises(TypeError):
        table.publish.date_status[8] = "canceled"  # type: ignore[index]


def test_a_key_pasted_into_the_config_is_refused(tmp_path):
    path = write(tmp_path, '# key: sk-live-abcdef123456\ntimezone = "Europe/Oslo"\n')
    with pytest.raises(ConfigError, match="contains the API key") as caught:
        load_config(path, environ={"FRONTCORE_API_KEY": "sk-live-abcdef123456"})
    assert "sk-live" not in str(caught.value)


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("fc-key\nsecond-line-1234", "a control character or space"),
        ("fc-key with-space-1234", "a control character or space"),
        ("fc-key\x7f-1234567", "a control character or space"),
        ("fc-nøkkel-12345678", "a character that is not ASCII"),
        ("fc-key\u200b-1234567", "a character that is not ASCII"),
    ],
)
def test_a_key_no_header_can_carry_is_a_config_error(key, kind, tmp_path):
    """Such a key would fail every request, and be retried as if the network were at fault:
    exit 2 at once, naming where the key came from and never the key."""
    for environ, where in (
        ({"FRONTCORE_API_KEY": key}, "FRONTCORE_API_KEY"),
        ({"FRONTCORE_API_KEY_FILE": str(tmp_path / "key")}, "the key file"),
    ):
        (tmp_path / "key").write_text(key + "\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=f"the API key in {where} contains {kind}") as caught:
            api_access(Config(root=tmp_path), environ=environ)
        assert key.strip() not in str(caught.value) and "1234" not in str(caught.value)


def test_the_key_file_variable_names_a_file_read_from_the_project(tmp_path):
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "key").write_text("  fc-from-a-file-1234\n", encoding="utf-8")
    config = Config(root=tmp_path)
    access = api_access(config, environ={"FRONTCORE_API_KEY_FILE": "secret/key"})
    assert access.api_key == "fc-from-a-file-1234"
    both = {"FRONTCORE_API_KEY": "fc-env-wins-5678", "FRONTCORE_API_KEY_FILE": "secret/key"}
    assert api_access(config, environ=both).api_key == "fc-env-wins-5678"
    with pytest.raises(ConfigError, match=r"FRONTCORE_API_KEY_FILE .*missing.* cannot be read"):
        api_access(config, environ={"FRONTCORE_API_KEY_FILE": "missing"})


def test_missing_key_says_how_to_set_it():
    with pytest.raises(ConfigError, match="set FRONTCORE_API_KEY"):
        api_access(Config(), environ={})


def test_key_and_url_come_from_the_environment():
    access = api_access(
        Config(),
        environ={"FRONTCORE_API_KEY": " k3y-value ", "FRONTCORE_API_URL": "http://127.0.0.1:9/v2/"},
    )
    assert access.api_key == "k3y-value"
    assert access.base_url == "http://127.0.0.1:9/v2"
    assert "k3y-value" not in repr(access)


def test_default_base_url():
    access = api_access(Config(), environ={"FRONTCORE_API_KEY": "k"})
    assert access.base_url == "https://api.frontcore.com/v2"


def test_key_file_is_read_when_the_environment_has_none(tmp_path):
    (tmp_path / "secret").write_text("from-file-key\n")
    path = write(tmp_path, '[frontcore]\napi_key_file = "secret"\n')
    config = load_config(path, environ={})
    assert api_access(config, environ={}).api_key == "from-file-key"
    assert api_access(config, environ={"FRONTCORE_API_KEY": "env"}).api_key == "env"


def test_unreadable_key_file_is_a_config_error(tmp_path):
    path = write(tmp_path, '[frontcore]\napi_key_file = "nope"\n')
    with pytest.raises(ConfigError, match="api_key_file"):
        api_access(load_config(path, environ={}), environ={})


def test_old_kursguiden_base_works_with_a_one_line_warning(caplog):
    with caplog.at_level(logging.WARNING):
        access = api_access(
            Config(),
            environ={
                "FRONTCORE_API_KEY": "k",
                "FRONTCORE_API_URL": "https://www.kursguiden.no/api/v2",
            },
        )
    assert access.base_url == "https://www.kursguiden.no/api/v2"
    [record] = caplog.records
    assert "api.frontcore.com" in record.getMessage()


def test_bad_base_url_is_refused():
    with pytest.raises(ConfigError, match="FRONTCORE_API_URL"):
        api_access(Config(), environ={"FRONTCORE_API_KEY": "k", "FRONTCORE_API_URL": "ftp:x"})


def test_public_base_url_drops_credentials_and_query():
    assert (
        public_base_url("https://user:pw@api.example.test:8443/v2/?key=abc")
        == "https://api.example.test:8443/v2"
    )


def test_template_is_valid_toml_with_every_key_at_its_default(tmp_path):
    text = config_template()
    parsed = tomllib.loads(text)
    for name, default, _doc in documented_keys():
        section, _, key = name.rpartition(".")
        table = parsed[section] if section else parsed
        expected = list(default) if isinstance(default, tuple) else default  # TOML arrays
        assert table[key] == expected, name
    assert load_config(write(tmp_path, text)) == Config()


# -- folders catalog-gen writes never contain, or lie in, one another or the sources ----------


@pytest.mark.parametrize(
    ("text", "first", "second"),
    [
        ('snapshot_dir = "site/snapshots"\n', "'snapshot_dir'", "'site.output_dir'"),
        ('snapshot_dir = "."\n', "'snapshot_dir'", "'site.output_dir'"),
        ('[site]\noutput_dir = "snapshots/site"\n', "'snapshot_dir'", "'site.output_dir'"),
        ('snapshot_dir = "content"\n', "'snapshot_dir'", "'site.content_dir'"),
        ('snapshot_dir = "templates/data"\n', "'snapshot_dir'", "'site.templates_dir'"),
        ('[site]\noutput_dir = "templates/out"\n', "'site.output_dir'", "'site.templates_dir'"),
        ('[site]\noutput_dir = "static"\n', "'site.output_dir'", "the static/ folder"),
        ('[site]\noutput_dir = "themes/built"\n', "'site.output_dir'", "the themes/ folder"),
        ('[site]\ncontent_dir = "site/pages"\n', "'site.output_dir'", "'site.content_dir'"),
        (
            'snapshot_dir = "public"\n[site]\noutput_dir = "public/www"\n',
            "'snapshot_dir'",
            "'site.output_dir'",
        ),
        (
            'snapshot_dir = ".site.build-state.json"\n',
            "'snapshot_dir'",
            "the build state (.site.build-state.json)",
        ),
    ],
)
def test_folders_that_contain_one_another_are_a_config_error_naming_both(
    tmp_path, text, first, second
):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert first in message and second in message, message
    assert str(path) in message and "\n" not in message
    assert caught.value.exit_code == 2


def test_a_folder_linked_into_another_counts_where_it_really_is(tmp_path):
    (tmp_path / "site" / "kept").mkdir(parents=True)
    (tmp_path / "data").symlink_to(tmp_path / "site" / "kept")
    with pytest.raises(ConfigError, match=r"'snapshot_dir'.*'site\.output_dir'"):
        load_config(write(tmp_path, 'snapshot_dir = "data"\n'))


@pytest.mark.parametrize(
    "text",
    [
        "",
        'snapshot_dir = "data/snapshots"\n[site]\noutput_dir = "data/site"\n',
        '[site]\noutput_dir = "public"\ntemplates_dir = "design"\ncontent_dir = "pages"\n',
        'snapshot_dir = "/var/lib/catalog-gen/snapshots"\n',
        '[site]\noutput_dir = "site-preview"\n',  # a name that starts like another is apart
    ],
)
def test_folders_apart_are_fine(tmp_path, text):
    load_config(write(tmp_path, text))


def test_the_build_state_the_config_guards_is_the_one_the_build_writes(tmp_path):
    from catalog_gen.site.buildstate import state_path

    config = load_config(write(tmp_path, '[site]\noutput_dir = "public/www"\n'))
    assert config.build_state_path == state_path(config.output_path)
