import re

from clvbayes.cli import main


def test_demo_prints_estimates_next_to_published(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "customers: 2,357   repeat buyers: 946" in out
    for name, published in (("r", "0.242594"), ("alpha", "4.4136"), ("a", "0.79292"), ("b", "2.42589")):
        line = next(line for line in out.splitlines() if line.startswith(f"{name} "))
        assert published in line
    assert re.search(r"BG/NBD LL\s+-9582\.4", out)
    assert "actual 1,882" in out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out
