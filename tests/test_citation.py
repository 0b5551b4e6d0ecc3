"""CITATION.cff and the package metadata agree (the file's schema is validated by .ci/run
with cffconvert, which pins an old jsonschema and so is kept out of the test environment)."""

import importlib.metadata
import re
from pathlib import Path

import clvbayes

ROOT = Path(__file__).resolve().parents[1]
CFF = (ROOT / "CITATION.cff").read_text()


def _field(name: str) -> str:
    match = re.search(rf'^{name}: "?([^"\n]+)"?$', CFF, flags=re.M)
    assert match, f"CITATION.cff has no top-level {name!r}"
    return match.group(1)


def test_version_matches_package_metadata():
    assert _field("version") == clvbayes.__version__ == importlib.metadata.version("clvbayes")


def test_license_and_title_match_pyproject():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'license = "{_field("license")}"' in pyproject
    assert _field("cff-version") == "1.2.0"
    assert "clvbayes" in _field("title")


def test_references_hold_the_model_papers():
    for doi in ("10.1287/mksc.1040.0098", "10.1509/jmkr.2005.42.4.415"):
        assert f"doi: {doi}" in CFF
    assert "A stochastic RFM model" in CFF  # Colombo & Jiang (1999), the Gamma-Gamma model


def test_readme_has_a_citing_section_pointing_to_the_file():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Citing", 1)[1]
    assert "CITATION.cff" in section and "10.1287/mksc.1040.0098" in section


def test_repository_url_is_the_same_in_citation_and_pyproject():
    url = _field("repository-code")
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url), url
    pyproject = (ROOT / "pyproject.toml").read_text()
    urls = pyproject.split("[project.urls]", 1)[1].split("\n[", 1)[0]
    assert f'Repository = "{url}"' in urls


def test_license_file_is_the_apache_2_0_text_the_metadata_declares():
    text = (ROOT / "LICENSE").read_text()
    assert _field("license") == "Apache-2.0"
    assert "Apache License\n                           Version 2.0, January 2004" in text
    # the full text: the 9 sections of the terms and the appendix
    assert "9. Accepting Warranty or Additional Liability." in text
    assert "APPENDIX: How to apply the Apache License to your work." in text
    assert 'license-files = ["LICENSE"]' in (ROOT / "pyproject.toml").read_text()
