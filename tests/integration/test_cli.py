"""The `nebula` command line: subcommands, help, and clear one-line errors."""
import os
import subprocess

import pytest

from nebula_proc import NEBULA, run


def test_version():
    r = run("version")
    assert r.returncode == 0
    assert r.stdout.startswith("nebula ")
    assert run("--version").stdout == r.stdout


def test_help_lists_commands():
    r = run("help")
    assert r.returncode == 0
    for cmd in ("server", "version", "help"):
        assert cmd in r.stdout
    assert run("--help").returncode == 0


@pytest.mark.parametrize("args", [["server", "--help"], ["help", "server"], ["server", "-h"]])
def test_server_help_documents_every_option(args):
    r = run(*args)
    assert r.returncode == 0, r.stderr
    for opt in ("--data DIR", "--port N", "--listen ADDR:PORT", "--threads", "--config FILE",
                "--log-level LEVEL", "--access-key", "--secret-key", "--shutdown-grace"):
        assert opt in r.stdout, opt
    assert "NEBULA_DATA" in r.stdout and "default ./nebula-data" in r.stdout
    assert "default 8080" in r.stdout


def test_server_help_documents_the_mount_options():
    # Issue 7: the mount's options are documented in --help, each with the
    # FUSE mount option it sets where there is one.
    r = run("server", "--help")
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())  # help lines wrap
    for opt in ("--mount DIR", "--allow-other", "allow_other", "--default-permissions",
                "default_permissions", "--mount-read-only", "--writeback-cache",
                "--entry-timeout SECONDS", "--attr-timeout SECONDS", "--mount-threads N",
                "NEBULA_ENTRY_TIMEOUT; default 60", "NEBULA_ATTR_TIMEOUT; default 60"):
        assert opt in text, opt


def one_line_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_no_command_is_usage_error():
    r = run()
    assert r.returncode == 2
    assert "Usage" in r.stderr


def test_unknown_command():
    one_line_error(run("frobnicate"), "unknown command 'frobnicate'")
    one_line_error(run("help", "frobnicate"), "unknown command 'frobnicate'")


def test_unknown_flag():
    one_line_error(run("server", "--frobnicate"), "unknown option '--frobnicate'")
    one_line_error(run("version", "--x=1"), "unknown option '--x'")
    one_line_error(run("server", "-x"), "unknown option '-x'")


def test_bad_values():
    one_line_error(run("server", "--port", "http"), "--port", "'http' is not an integer")
    one_line_error(run("server", "--port", "99999"), "--port", "out of range")
    one_line_error(run("server", "--listen", "nocolon"), "--listen", "'nocolon'")
    one_line_error(run("server", "--log-level", "loud"), "--log-level", "'loud'")
    one_line_error(run("server", "--data"), "'--data' needs a value")
    one_line_error(run("server", "stray"), "unexpected argument 'stray'")


def test_bad_environment_value():
    one_line_error(run("server", env={"NEBULA_PORT": "eighty"}), "NEBULA_PORT", "'eighty'")


def test_bad_config_file(tmp_path):
    conf = tmp_path / "nebula.conf"
    conf.write_text("# ok\nport = 9000\nthis is not an option line\n")
    one_line_error(run("server", "--config", str(conf)), str(conf), "line 3",
                   "expected 'key = value'")
    conf.write_text("colour = blue\n")
    one_line_error(run("server", "--config", str(conf)), "line 1", "unknown option 'colour'")
    conf.write_text("port = 70000\n")
    one_line_error(run("server", env={"NEBULA_CONFIG": str(conf)}), "line 1", "out of range")
    one_line_error(run("server", "--config", str(tmp_path / "missing.conf")), "missing.conf",
                   "No such file")


@pytest.mark.parametrize("role", ["nebula-master", "nebula-s3-gateway", "nebula-fuse"])
def test_role_names_are_reserved(role):
    path = os.path.join(os.path.dirname(NEBULA), role)
    assert os.path.islink(path)
    r = subprocess.run([path], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    assert role in r.stderr and "nebula server" in r.stderr


def test_disk_tool_usage(tmp_path):
    r = run("disk", "--help")
    assert r.returncode == 0 and "check DIR" in r.stdout and "stats DIR" in r.stdout
    one_line_error(run("disk"), "missing argument")
    one_line_error(run("disk", "frob", str(tmp_path)), "unknown action 'frob'")
    r = run("disk", "check", str(tmp_path / "none"))
    assert r.returncode == 2 and "cannot open" in r.stderr and str(tmp_path / "none") in r.stderr
