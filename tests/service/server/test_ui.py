"""The ``/ui`` page and its files (Starlette's ``StaticFiles``), in process."""

from __future__ import annotations

import json

import pytest
from http_helpers import client
from weightinit.service.server.ui import PAGE, PAGE_DIRECTORY, UI_CSP

APP = client()
SEED_EXAMPLE = {"seed": 1234, "convention": "torch", "layers": [
    {"type": "linear", "name": "fc1", "in_features": 100, "out_features": 64,
     "weight_init": "glorot_uniform", "bias_init": "zeros"},
    {"type": "linear", "name": "fc2", "in_features": 64, "out_features": 10,
     "weight_init": "glorot_uniform", "bias_init": "zeros"}]}
# Each file of the page and the media type a browser needs to use it (nosniff is on).
FILES = {
    "app.js": "text/javascript",
    "charts.js": "text/javascript",
    "results.js": "text/javascript",
    "sha256.js": "text/javascript",
    "style.css": "text/css",
    "examples.json": "application/json",
}


def test_the_page_is_served_with_its_own_content_security_policy() -> None:
    response = APP.get("/ui")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers.get_list("content-security-policy") == [UI_CSP]
    assert response.headers["cache-control"] == "no-cache"
    assert response.content == (PAGE_DIRECTORY / PAGE).read_bytes()
    assert 'src="ui/app.js"' in response.text  # relative to /ui, as the files are mounted


def test_root_leads_to_the_page() -> None:
    response = APP.get("/", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == "/ui"
    assert APP.get("/").url.path == "/ui"


def test_the_folder_holds_exactly_the_page_and_its_files() -> None:
    assert sorted(p.name for p in PAGE_DIRECTORY.iterdir()) == sorted([PAGE, *FILES])


@pytest.mark.parametrize("name", sorted(FILES))
def test_files_are_served_from_the_package_with_their_media_type(name: str) -> None:
    response = APP.get(f"/ui/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(FILES[name])
    assert response.headers.get_list("content-security-policy") == [UI_CSP]
    assert response.content == (PAGE_DIRECTORY / name).read_bytes()


def test_an_unchanged_file_is_revalidated_with_304() -> None:
    first = APP.get("/ui/app.js")
    again = APP.get("/ui/app.js", headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert APP.head("/ui").status_code == 200


def test_unknown_files_are_404_and_nothing_outside_the_folder_is_served() -> None:
    assert APP.get("/ui/nope.js").status_code == 404
    assert APP.get("/ui/..%2Fdiagnose.py").status_code == 404
    assert APP.get("/ui/../ui.py").status_code == 404
    assert APP.get("/ui/%2e%2e/%2e%2e/ui.py").status_code == 404
    assert APP.post("/ui/app.js").status_code in (404, 405)


def test_the_page_works_with_auth_on_without_a_token() -> None:
    assert client(api_tokens="secret").get("/ui/app.js").status_code == 200
    assert client(api_tokens="secret").get("/ui").status_code == 200


def test_the_page_loads_nothing_from_another_origin() -> None:
    for name in [PAGE, *FILES]:
        text = (PAGE_DIRECTORY / name).read_text()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text and "//cdn" not in text


def test_examples_are_valid_specs_with_the_seed_example_first() -> None:
    examples = json.loads((PAGE_DIRECTORY / "examples.json").read_text())
    assert examples[0]["spec"] == SEED_EXAMPLE | {"dtype": "float32"}
    for example in examples:
        response = APP.post("/v1/plan", json=example["spec"])
        assert response.status_code == 200, example["id"]
