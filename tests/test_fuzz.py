"""Fuzzing at unit level, against the fake ComfyUI: the hook with hostile prompts, the API with hostile requests.

The hook runs on ComfyUI's event loop for every prompt, before validation: whatever arrives, it must return
the very object it got and never raise, and the writer thread behind it must survive and keep recording.
The API must answer every request with a 2xx, or a 4xx carrying `{"ok": false, "status": N, "error": ...}`, never a 500.
"""

from __future__ import annotations

import json
import os
from urllib.parse import quote

import pytest
from api_app import AppClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from usage_stats.mapper import ModelMapper, PackageMapper
from usage_stats.recording.writer import Writer
from usage_stats.tracker import UsageStore

HUGE = "x" * 1_000_000
CLASS_TYPES = ["CheckpointLoaderSimple", "VAELoader", "UNETLoader", "LoraLoader", "CLIPTextEncode",
               "UpscaleModelLoader", "TripleCLIPLoader", "NoSuchNode", "", "\ud800", "\x00", "<script>x</script>"]
MODEL_NAMES = ["a.safetensors", "sub/b.ckpt", "sub\\b.ckpt", "taesd", "embedding:e", "embedding:e:1.2", "(embedding:e)"]

texts = st.one_of(st.text(max_size=20), st.sampled_from(MODEL_NAMES + CLASS_TYPES + [HUGE]))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), texts, st.binary(max_size=8))
links = st.lists(st.one_of(st.text(max_size=3), st.integers()), min_size=0, max_size=3)  # [id, slot] and near misses
values = st.recursive(scalars | links, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
                      max_leaves=4)
inputs = st.one_of(st.dictionaries(st.sampled_from(["ckpt_name", "vae_name", "unet_name", "lora_name", "text",
                                                    "model_name", "clip_name1", "clip"]) | st.text(max_size=8),
                                   values, max_size=6), values)
nodes = st.one_of(
    st.fixed_dictionaries({"class_type": st.sampled_from(CLASS_TYPES) | scalars, "inputs": inputs}),
    st.fixed_dictionaries({"inputs": inputs}),  # no class_type
    st.dictionaries(texts, values, max_size=3),
    values,
)
prompts = st.dictionaries(st.text(max_size=4) | st.integers().map(str), nodes, max_size=8)
bodies = st.one_of(
    st.fixed_dictionaries({"prompt": prompts}, optional={"client_id": texts, "extra_data": values, "number": values}),
    st.fixed_dictionaries({"prompt": values}),
    values,
)


@pytest.fixture
def writer(fake_comfy):
    models = fake_comfy.models
    for name in ("checkpoints/a.safetensors", "checkpoints/sub/b.ckpt", "vae/a.safetensors", "embeddings/e.pt",
                 "vae_approx/taesd_decoder.pth", "upscale_models/a.safetensors", "text_encoders/a.safetensors"):
        (models / name).parent.mkdir(parents=True, exist_ok=True)
        (models / name).write_bytes(b"x")
    path = os.path.join(fake_comfy.base, "user", "__nodes_stats", "usage_stats.db")
    writer = Writer(lambda: UsageStore(path), PackageMapper(own_pack="comfyui-usage-stats"), ModelMapper())
    writer.start()
    assert writer.wait_ready(10) is not None
    yield writer
    writer.stop()


def test_fuzzed_prompts_never_break_the_hook_or_the_writer(writer):
    seen = {"n": 0}

    @settings(max_examples=10_000, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(body=bodies)
    def hook_returns_what_it_got(body):
        seen["n"] += 1
        assert writer.on_prompt(body) is body
        if seen["n"] % 1000 == 0:  # the writer keeps up and stays alive all along
            writer.flush(timeout=30)
            assert writer._thread.is_alive()

    hook_returns_what_it_got()
    assert seen["n"] >= 10_000
    writer.flush(timeout=30)
    assert writer._thread.is_alive()

    # A valid prompt after all that is still recorded, with its model.
    store = writer.store
    before = store.prompt_count()
    body = {"prompt": {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "a.safetensors"}}}}
    assert writer.on_prompt(body) is body
    writer.flush(timeout=30)
    assert store.prompt_count() == before + 1
    assert ("checkpoints", "a.safetensors") in {(t, n) for t, n, *_ in store.model_rows()}
    assert writer.dropped < seen["n"] // 100, "only unstorable prompts may be dropped"


def test_hook_survives_objects_that_misbehave(writer):
    class Hostile(dict):
        def get(self, *args):
            raise RuntimeError("boom")

    class HostileValues(dict):
        def values(self):
            raise RuntimeError("boom")

    for body in (Hostile(prompt={}), {"prompt": HostileValues(a=1)}, None, 3, "prompt", [("prompt", {})], object()):
        assert writer.on_prompt(body) is body
    writer.flush(timeout=30)
    assert writer._thread.is_alive()


def test_a_lone_surrogate_class_type_is_stored_escaped_and_loses_nothing(writer):
    """JSON "\\ud800" decodes to a str SQLite cannot store; it once killed the writer thread."""
    for class_type in ("Good1", json.loads('"\\ud800"'), "Good2"):
        writer.on_prompt({"prompt": {"1": {"class_type": class_type}}})
    writer.flush(timeout=30)
    assert writer._thread.is_alive()
    assert {row[0] for row in writer.store.node_rows()} == {"Good1", "\\ud800", "Good2"}
    assert writer.store.prompt_count() == 3 and writer.dropped == 0


# --------------------------------------------------------------------------- the API


@pytest.fixture
def api_client(writer, tmp_path):
    """An aiohttp test server with exactly the routes ComfyUI would get, on the fake PromptServer."""
    app = AppClient(writer, str(tmp_path / "decisions"))
    writer.on_prompt({"prompt": {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "a.safetensors"}}}})
    writer.flush(timeout=30)

    def call(method, path, **kwargs):
        status, body, headers = app.call(method, path, **kwargs)
        return status, body, headers.get("Content-Type", "")

    call.concurrently = app.concurrently
    yield call
    app.close()


def assert_json_answer(status: int, body: bytes, content_type: str) -> None:
    assert status < 500, (status, body[:300])
    assert content_type.startswith("application/json"), content_type
    data = json.loads(body)
    if status >= 400:
        assert isinstance(data, dict) and isinstance(data["error"], str) and data["error"], data


PARAM_NAMES = ["type", "status", "q", "offset", "limit", "package", "days", "user", "kind", "id", "format", "what", "x", ""]
PARAM_VALUES = st.one_of(
    st.text(max_size=30), st.sampled_from(["used", "unused_new,safe_to_remove", "checkpoints", "0", "-1", "1e3",
                                           "99999999999", "%ff", "a" * 300, ",", " ", "\x00", "7", "all", "3651",
                                           "default", "model", "prompt", "checkpoints/a.safetensors", "csv", "json",
                                           "daily", "models"]),
)
READ_ROUTES = ["packages", "usage", "models", "status", "summary", "history", "realtime", "config", "export"]
query = st.lists(st.tuples(st.sampled_from(PARAM_NAMES) | st.text(max_size=5), PARAM_VALUES), max_size=4)


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(READ_ROUTES), params=query)
def test_fuzzed_query_parameters_get_json_never_500(api_client, route, params):
    status, body, content_type = api_client("GET", f"/nodes-stats/{route}", params=[(k, v) for k, v in params])
    if route == "export" and status == 200:  # a download: CSV or JSON
        assert content_type.startswith(("text/csv", "application/json")), content_type
    else:
        assert_json_answer(status, body, content_type)


origins = st.one_of(st.none(), st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30), st.sampled_from(
    ["null", "http://[::1", "http://evil.example", "http://a:99999", "file://", "http://127.0.0.1:1"]))
reset_bodies = st.one_of(
    st.binary(max_size=64), st.sampled_from([b"[" * 60_000, b"{" * 60_000, b"x" * 200_000, b'{"confirm": true}']),
    st.builds(lambda v: json.dumps(v).encode(),
              st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                           lambda i: st.lists(i, max_size=3) | st.dictionaries(st.sampled_from(["confirm", "x"]), i, max_size=2),
                           max_leaves=5)),
)


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=reset_bodies, origin=origins,
       content_type=st.sampled_from(["application/json", "text/plain", "application/json; charset=latin-1", ""]))
def test_fuzzed_reset_requests_get_json_never_500_and_never_reset(api_client, body, origin, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    if origin is not None:
        headers["Origin"] = origin
    status, raw, kind = api_client("POST", "/nodes-stats/reset", data=body, headers=headers)
    assert_json_answer(status, raw, kind)
    if status == 200:  # only an explicit confirmation may reset, and only without a foreign Origin
        data = json.loads(body)
        assert isinstance(data, dict) and data.get("confirm") is True and origin is None


config_bodies = st.builds(
    lambda v: json.dumps(v).encode(),
    st.dictionaries(
        st.sampled_from(["tracking", "consider_days", "safe_days", "retention_days", "track_loras", "model_types", "x"]),
        st.none() | st.booleans() | st.integers(-10, 10_000) | st.floats(allow_nan=False) | st.text(max_size=5)
        | st.lists(st.text(max_size=12), max_size=3),
        max_size=3,
    ),
) | st.binary(max_size=40)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=config_bodies)
def test_fuzzed_config_changes_get_json_never_500_and_a_refusal_changes_nothing(api_client, body):
    before = json.loads(api_client("GET", "/nodes-stats/config")[1])["config"]
    status, raw, kind = api_client("PUT", "/nodes-stats/config", data=body, headers={"Content-Type": "application/json"})
    assert_json_answer(status, raw, kind)
    after = json.loads(api_client("GET", "/nodes-stats/config")[1])["config"]
    if status != 200:
        assert after == before
    else:
        assert 1 <= after["consider_days"] < after["safe_days"] <= 3650 and 7 <= after["retention_days"] <= 3650
    api_client("PUT", "/nodes-stats/config", data=json.dumps(before).encode(), headers={"Content-Type": "application/json"})


CHANGES = [{"consider_days": 20}, {"safe_days": 70}, {"retention_days": 90}, {"track_loras": True},
           {"model_types": ["checkpoints"]}]


def test_concurrent_settings_changes_each_persist(api_client, writer):
    """Five PUTs at once, each changing one setting: each is applied over the ones before it, none is lost."""
    answers = api_client.concurrently(*(("PUT", "/nodes-stats/config", {"json": change}) for change in CHANGES))
    assert [status for status, _, _ in answers] == [200] * len(CHANGES), answers
    expected = {key: value for change in CHANGES for key, value in change.items()}
    config = json.loads(api_client("GET", "/nodes-stats/config")[1])["config"]
    assert {key: config[key] for key in expected} == expected
    assert {key: writer.store.load_settings("config")[key] for key in expected} == expected


def test_only_this_computer_may_allow_file_actions_from_the_network(writer, tmp_path):
    """A client on the network must not be able to lift the guard that protects against the network."""
    from aiohttp import web

    @web.middleware
    async def from_the_lan(request, handler):
        return await handler(request.clone(remote="192.168.1.23"))

    app = AppClient(writer, str(tmp_path / "decisions"), middlewares=[from_the_lan])
    try:
        status, body = app.json("PUT", "/nodes-stats/config", {"allow_remote_actions": True})
        assert status == 403 and "only from this computer" in body["error"]
        assert writer.config["allow_remote_actions"] is False
        assert app.json("PUT", "/nodes-stats/config", {"retention_days": 90})[0] == 200  # other settings are not guarded
    finally:
        app.close()


UNSTORABLE = ["\ud800", "a\udfffb", "nul\x00inside", "\x00"]
"""JSON "\\ud800" decodes to a lone surrogate; a URL cannot carry one (aiohttp decodes bad UTF-8 to U+FFFD), only a NUL."""


def assert_refused_as_unstorable(answer, what) -> None:
    status, body, content_type = answer
    assert_json_answer(status, body, content_type)
    assert status == 400 and "cannot be stored" in json.loads(body)["error"], (what, body)


@pytest.mark.parametrize("text", UNSTORABLE)
def test_text_that_cannot_be_stored_in_a_json_body_is_a_400(api_client, text):
    for path, body in [
        ("/nodes-stats/keep", {"kind": "package", "name": text, "keep": True}),
        ("/nodes-stats/keep", {"kind": "model", "model_type": "checkpoints", "name": text, "keep": True}),
        ("/nodes-stats/config", {"model_types": [text]}),
        ("/nodes-stats/config", {text: 1}),
        ("/nodes-stats/reset", {"confirm": True, "note": text}),
    ]:
        method = "PUT" if path.endswith("config") else "POST"
        assert_refused_as_unstorable(api_client(method, path, json=body), body)
    assert json.loads(api_client("GET", "/nodes-stats/config")[1])["config"]["model_types"] == []
    assert json.loads(api_client("GET", "/nodes-stats/status")[1])["prompts_recorded"] == 1  # and no reset


@pytest.mark.parametrize("text", ["\x00", "a\x00b"])
def test_a_nul_in_a_query_or_a_path_is_a_400(api_client, text):
    for path, params in [("/nodes-stats/models", {"q": text}), ("/nodes-stats/history", {"kind": "model", "id": text}),
                         ("/nodes-stats/packages", {"user": text})]:
        assert_refused_as_unstorable(api_client("GET", path, params=params), params)
    path = f"/nodes-stats/unload/models/checkpoints/{quote(text)}"
    assert_refused_as_unstorable(api_client("PUT", path, json={"timeout_seconds": 60}), path)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=12) | st.sampled_from(UNSTORABLE), kind=st.sampled_from(["model", "package"]))
def test_fuzzed_keep_names_get_json_never_500(api_client, name, kind):
    body = {"kind": kind, "model_type": "checkpoints", "name": name, "keep": True}
    status, raw, content_type = api_client("POST", "/nodes-stats/keep", json=body)
    assert_json_answer(status, raw, content_type)
