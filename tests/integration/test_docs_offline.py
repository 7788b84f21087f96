"""/docs and /redoc work without internet: their pages name no outside URL, their assets come from the API,
and Debian's headless Chromium, with every host but 127.0.0.1 made unresolvable, renders every operation.

Chromium is installed by scripts/ensure-chromium (run by scripts/test) where it is missing and this runs as
root with apt-get; elsewhere the browser test is skipped and says why.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import httpx
import pytest

from tests.producer_support import FakeCampaignService, FakeGateway, app_with_fakes, serve

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# The flags this machine's Chromium needs headless and offline (no sandbox as root, no background traffic).
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--virtual-time-budget=20000",
]
PAGES = {
    # page: how each operation's element is identified, from its tag and operationId
    "docs": "operations-{tag}-{operation_id}",
    "redoc": "tag/{tag}/operation/{operation_id}",
}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    keys_file = tmp_path_factory.mktemp("docs") / "keys.json"
    app, _ = app_with_fakes(keys_file, FakeCampaignService(), FakeGateway())
    operations = [
        (operation["tags"][0], operation["operationId"])
        for path in app.openapi()["paths"].values()
        for operation in path.values()
    ]
    with serve(app) as url:
        yield url, operations


@pytest.mark.parametrize("page", PAGES)
def test_pages_name_no_outside_url_and_their_assets_are_served(api, page):
    url, _ = api
    html = httpx.get(f"{url}/{page}").text
    assert not re.findall(r"https?://", html)
    assets = re.findall(r'(?:src|href)="(/[^"]+)"', html)
    assert len(assets) >= 2
    for asset in assets:
        response = httpx.get(url + asset)
        assert response.status_code == 200 and len(response.content) > 1000, asset


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed and could not be "
                    "(scripts/ensure-chromium installs it as root with apt-get)")
@pytest.mark.parametrize("page", PAGES)
def test_headless_chromium_renders_every_operation_offline(api, page, tmp_path):
    url, operations = api
    command = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path}", "--dump-dom", f"{url}/{page}"]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=180, check=True).stdout
    expected = {PAGES[page].format(tag=tag, operation_id=op) for tag, op in operations}
    assert {tag for tag, _ in operations} >= {"campaigns", "actions"}
    missing = sorted(element for element in expected if f'id="{element}"' not in dom)
    assert missing == [], f"{page} did not render: {missing}"
