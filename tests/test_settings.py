"""Settings: every value is checked the same way, and a refusal names the field and what it allows."""

import pytest
from usage_stats.recording.settings import CONFIG_FIELDS, Config, Field, SettingsError, check_config, restore, validate

TIMEOUT = Field("timeout", 600, int, 10, 86_400)


def test_validate_applies_changes_over_current_values():
    values = validate(CONFIG_FIELDS, {"consider_days": 10}, {"tracking": False})
    assert values["tracking"] is False
    assert values["consider_days"] == 10
    assert values["retention_days"] == 180


@pytest.mark.parametrize(
    "changes, field, words",
    [
        ({"timeout": 5}, "timeout", "from 10 to 86400"),
        ({"timeout": "600"}, "timeout", "a whole number"),
        ({"timeout": True}, "timeout", "a whole number"),
        ({"timeout": 60.5}, "timeout", "a whole number"),
        ({"colour": 1}, "colour", "unknown setting 'colour'"),
    ],
)
def test_a_refusal_names_the_field_and_the_allowed_range(changes, field, words):
    with pytest.raises(SettingsError) as refused:
        validate([TIMEOUT], {}, changes)
    assert refused.value.field == field
    assert words in str(refused.value)


def test_a_body_that_is_not_an_object_is_refused():
    with pytest.raises(SettingsError, match="JSON object"):
        validate(CONFIG_FIELDS, {}, ["tracking"])


def test_booleans_are_not_numbers_and_numbers_are_not_booleans():
    with pytest.raises(SettingsError, match="true or false"):
        validate(CONFIG_FIELDS, {}, {"tracking": 0})


def test_float_fields_take_whole_numbers_too():
    multiplier = Field("multiplier", 1.0, float, 0.1, 10)
    assert validate([multiplier], {}, {"multiplier": 2}) == {"multiplier": 2.0}


def test_lists_are_deduplicated_and_sorted():
    assert validate(CONFIG_FIELDS, {}, {"model_types": ["vae", "checkpoints", "vae"]})["model_types"] == ["checkpoints", "vae"]


def test_the_consider_threshold_must_come_before_the_safe_one():
    values = validate(CONFIG_FIELDS, {}, {"consider_days": 90})
    with pytest.raises(SettingsError) as refused:
        check_config(values)
    assert refused.value.field == "safe_days"


def test_a_stored_value_that_is_no_longer_valid_falls_back_to_its_default():
    assert restore([TIMEOUT], {"timeout": 1, "gone": 3}, "test") == {"timeout": 600}
    assert restore([TIMEOUT], {"timeout": 60}, "test") == {"timeout": 60}


def test_settings_survive_in_the_store_and_a_reset_keeps_them(store):
    store.save_settings("config", {"tracking": False})
    store.reset()
    assert store.load_settings("config") == {"tracking": False}
    assert store.load_settings("unload") == {}


def test_config_is_replaced_whole():
    config = Config(CONFIG_FIELDS)
    assert config["tracking"] is True
    config.replace({**config.as_dict(), "tracking": False})
    assert config["tracking"] is False
