"""The smoke check (14f) reaches Sifu and Jupyter the way students do: https when the listeners are."""

from __future__ import annotations

from types import SimpleNamespace

from deployer.checklist.instances import SmokeCheck
from deployer.config import load

CNAME = "sifu-notebooks-sifu-notebooks-env.us-east-1.elasticbeanstalk.com"


def urls(**env):
    s = load(environ=env, overrides_file=None).settings
    return SmokeCheck().urls(SimpleNamespace(settings=s), CNAME)


def test_plain_http_goes_to_the_cname():
    health, contents, _ = urls()
    assert health == f"http://{CNAME}:3334/health" and contents == f"http://{CNAME}:3335/api/contents"


def test_https_listeners_are_checked_over_https_on_the_name_the_certificate_carries():
    health, contents, base = urls(DEPLOY__WEB__HTTPS="true",
                                  DEPLOY__EB__CERTIFICATE_ARN="arn:aws:acm:us-east-1:123456789012:certificate/abc",
                                  DEPLOY__WEB__PUBLIC_HOST="notebooks.example.org")
    assert health == "https://notebooks.example.org:3334/health"
    assert contents == "https://notebooks.example.org:3335/api/contents" and base.startswith("https://notebooks.example.org:3334/")
    # Without a name of its own, the certificate must cover the CNAME: still https.
    health, _, _ = urls(DEPLOY__WEB__HTTPS="true",
                        DEPLOY__EB__CERTIFICATE_ARN="arn:aws:acm:us-east-1:123456789012:certificate/abc")
    assert health == f"https://{CNAME}:3334/health"
