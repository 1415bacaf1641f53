"""`multus-webhook certs`: the files it writes verify with the cryptography API."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from webhook.cli import main


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_certs_writes_a_ca_and_a_serving_certificate_it_signed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "certs"
    assert main(["certs", "--out", str(out), "--dns", "multus-webhook.multus-webhook.svc", "--ip", "127.0.0.1"]) == 0
    ca, leaf = load(out / "ca.crt"), load(out / "tls.crt")
    key = serialization.load_pem_private_key((out / "tls.key").read_bytes(), password=None)

    leaf.verify_directly_issued_by(ca)
    ca.verify_directly_issued_by(ca)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp256r1"
    assert key.public_key().public_numbers() == leaf.public_key().public_numbers()  # type: ignore[union-attr]

    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["multus-webhook.multus-webhook.svc"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]

    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign is True
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert not usage.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]

    now = dt.datetime.now(dt.UTC)
    assert leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc
    assert leaf.not_valid_after_utc - now > dt.timedelta(days=300)
    assert leaf.not_valid_after_utc <= ca.not_valid_after_utc

    assert stat.S_IMODE((out / "tls.key").stat().st_mode) == 0o600
    # stdout is the caBundle: base64 of ca.crt
    assert base64.b64decode(capsys.readouterr().out.strip()) == (out / "ca.crt").read_bytes()


def test_certs_defaults_to_the_in_cluster_service_names(tmp_path: Path) -> None:
    assert main(["certs", "--out", str(tmp_path)]) == 0
    sans = load(tmp_path / "tls.crt").extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "multus-webhook.multus-webhook.svc" in sans.get_values_for_type(x509.DNSName)


def test_certs_refuses_to_overwrite_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "--out", str(tmp_path), "--ip", "127.0.0.1"]) == 0
    before = (tmp_path / "tls.crt").read_bytes()
    assert main(["certs", "--out", str(tmp_path), "--ip", "127.0.0.1"]) == 1
    assert "pass --force" in capsys.readouterr().err
    assert (tmp_path / "tls.crt").read_bytes() == before
    assert main(["certs", "--out", str(tmp_path), "--ip", "127.0.0.1", "--force"]) == 0
    assert (tmp_path / "tls.crt").read_bytes() != before


def certificates(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def test_force_renews_the_serving_certificate_under_the_same_ca(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A new CA would make the apiserver refuse the renewed certificate until the caBundle changes."""
    assert main(["certs", "--out", str(tmp_path), "--ip", "127.0.0.1"]) == 0
    ca_pem, first = (tmp_path / "ca.crt").read_bytes(), (tmp_path / "tls.crt").read_bytes()
    assert stat.S_IMODE((tmp_path / "ca.key").stat().st_mode) == 0o600
    bundle = capsys.readouterr().out
    assert main(["certs", "--out", str(tmp_path), "--ip", "127.0.0.1", "--force"]) == 0
    assert (tmp_path / "tls.crt").read_bytes() != first
    assert (tmp_path / "ca.crt").read_bytes() == ca_pem
    load(tmp_path / "tls.crt").verify_directly_issued_by(load(tmp_path / "ca.crt"))
    captured = capsys.readouterr()
    assert captured.out == bundle
    assert "CA changed" not in captured.err
    assert "WARNING" not in captured.err


def test_force_under_a_ca_with_less_than_a_year_left_warns_that_the_certificate_dies_with_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The serving certificate cannot outlive its CA: with 10 days left it gets 10 days, and the
    command says so, naming the CA's expiry and the way out. It still renews: that needs no change of
    the caBundle, and the CA's replacement does."""
    from webhook import certs

    ca = certs.new_ca(validity=dt.timedelta(days=10))
    certs.write_tls_files(tmp_path, ca.cert_pem, certs.issue(ca, "127.0.0.1", ip_addresses=["127.0.0.1"]), ca)
    assert main(["certs", "--out", str(tmp_path), "--ip", "127.0.0.1", "--force"]) == 0
    leaf = load(tmp_path / "tls.crt")
    leaf.verify_directly_issued_by(ca.cert)
    assert leaf.not_valid_after_utc == ca.cert.not_valid_after_utc
    err = capsys.readouterr().err
    expiry = f"{ca.cert.not_valid_after_utc:%Y-%m-%d}"
    assert f"WARNING: the CA in {tmp_path}/ca.crt expires on {expiry} (in 9 days)" in err
    assert "--new-ca" in err


def test_new_ca_rotates_in_two_steps_with_the_served_certificate_trusted_throughout(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "--out", str(tmp_path), "--ip", "127.0.0.1"]) == 0
    old_ca, old_leaf = load(tmp_path / "ca.crt"), (tmp_path / "tls.crt").read_bytes()
    capsys.readouterr()

    # Step 1: a new CA; the served certificate stays, and so does the CA it needs.
    assert main(["certs", "--out", str(tmp_path), "--new-ca"]) == 0
    new_ca, kept = certificates(tmp_path / "ca.crt")
    assert kept == old_ca
    assert new_ca != old_ca
    assert (tmp_path / "tls.crt").read_bytes() == old_leaf
    captured = capsys.readouterr()
    assert "the CA changed" in captured.err
    assert "--force" in captured.err
    assert base64.b64decode(captured.out) == (tmp_path / "ca.crt").read_bytes()

    # Step 2: the serving certificate from the new CA; the old CA is still trusted (the old
    # certificate may be served a while yet).
    assert main(["certs", "--out", str(tmp_path), "--ip", "127.0.0.1", "--force"]) == 0
    assert certificates(tmp_path / "ca.crt") == [new_ca, old_ca]
    load(tmp_path / "tls.crt").verify_directly_issued_by(new_ca)

    # Step 3: nothing served depends on the old CA any more.
    assert main(["certs", "--out", str(tmp_path), "--ip", "127.0.0.1", "--force"]) == 0
    assert certificates(tmp_path / "ca.crt") == [new_ca]


def test_new_ca_will_not_take_names_for_the_certificate_it_keeps(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "--out", str(tmp_path), "--ip", "127.0.0.1"]) == 0
    before = (tmp_path / "ca.crt").read_bytes()
    assert main(["certs", "--out", str(tmp_path), "--new-ca", "--dns", "x.example"]) == 2
    assert "--force" in capsys.readouterr().err
    assert (tmp_path / "ca.crt").read_bytes() == before


@pytest.mark.parametrize("names", [[], ["--dns", "x.example"]])
def test_force_with_new_ca_is_refused_saying_the_order(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], names: list[str]) -> None:
    """Together, --force would seem to replace the serving certificate (--new-ca keeps it), and the
    --dns refusal would tell to pass the --force already passed."""
    assert main(["certs", "--out", str(tmp_path), "--ip", "127.0.0.1"]) == 0
    before = {name: (tmp_path / name).read_bytes() for name in ("ca.crt", "ca.key", "tls.crt")}
    capsys.readouterr()
    assert main(["certs", "--out", str(tmp_path), "--force", "--new-ca", *names]) == 2
    assert "run --new-ca, put the caBundle it prints into both webhook configurations, then --force" \
        in capsys.readouterr().err
    assert {name: (tmp_path / name).read_bytes() for name in before} == before


def test_certs_names_the_file_it_cannot_read_or_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "tls.crt").mkdir()
    assert main(["certs", "--out", str(tmp_path), "--force"]) == 2
    assert f"cannot read {tmp_path}/tls.crt: Is a directory" in capsys.readouterr().err
    (tmp_path / "tls.crt").rmdir()
    (tmp_path / "tls.key").mkdir()
    assert main(["certs", "--out", str(tmp_path), "--force"]) == 2
    assert f"cannot write {tmp_path}/tls.key: Is a directory" in capsys.readouterr().err


def test_force_without_the_ca_key_makes_a_new_ca_and_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A directory written before ca.key was kept: the CA cannot sign, the old one stays trusted."""
    assert main(["certs", "--out", str(tmp_path), "--ip", "127.0.0.1"]) == 0
    old_ca = load(tmp_path / "ca.crt")
    (tmp_path / "ca.key").unlink()
    capsys.readouterr()
    assert main(["certs", "--out", str(tmp_path), "--ip", "127.0.0.1", "--force"]) == 0
    err = capsys.readouterr().err
    assert f"{tmp_path}/ca.key is missing" in err
    assert "the CA changed" in err
    new_ca, kept = certificates(tmp_path / "ca.crt")
    assert kept == old_ca
    load(tmp_path / "tls.crt").verify_directly_issued_by(new_ca)
    assert (tmp_path / "ca.key").exists()


def test_certs_rejects_a_bad_ip_with_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "--out", str(tmp_path), "--ip", "not-an-ip"]) == 2
    assert "not-an-ip" in capsys.readouterr().err
    assert not (tmp_path / "tls.crt").exists()


def test_certs_takes_a_dns_name_too_long_for_a_common_name_and_an_internationalised_one(tmp_path: Path) -> None:
    """X.509 caps the Common Name at 64 characters, DNS names go to 253: the name is in the SANs only
    (critical then, as RFC 5280 asks of a certificate with an empty subject)."""
    long_name = "a" * 60 + ".example.com"
    assert main(["certs", "--out", str(tmp_path), "--dns", long_name, "--dns", "bücher.example"]) == 0
    cert = load(tmp_path / "tls.crt")
    assert list(cert.subject) == []
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert sans.critical
    assert sans.value.get_values_for_type(x509.DNSName) == [long_name, "xn--bcher-kva.example"]


def test_certs_rejects_a_bad_dns_name_naming_the_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "--out", str(tmp_path), "--dns", "a..b"]) == 2
    assert "--dns 'a..b' is not a DNS name" in capsys.readouterr().err
    assert not (tmp_path / "tls.crt").exists()


@pytest.mark.parametrize(("name", "said"), [
    ("multus-webhook.ns.svc.", "--dns 'multus-webhook.ns.svc.' ends with a dot, which clients never match"),
    ("10.0.0.1", "--dns '10.0.0.1' is an IP address: give it with --ip"),
    ("fd00::1", "--dns 'fd00::1' is an IP address: give it with --ip"),
    ("foo bar.svc", "--dns 'foo bar.svc' is not a DNS name: letters, digits"),
    ("a/b.svc", "--dns 'a/b.svc' is not a DNS name: letters, digits"),
])
def test_certs_rejects_a_dns_name_no_client_matches_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, said: str) -> None:
    """The apiserver (Go's crypto/x509) matches none of these against the name it dials: a certificate
    holding them would be refused, long after the command that made it."""
    assert main(["certs", "--out", str(tmp_path), "--dns", name]) == 2
    err = capsys.readouterr().err
    assert said in err
    assert err.count("\n") == 1
    assert not (tmp_path / "tls.crt").exists()


def test_certs_takes_a_wildcard_and_an_underscore(tmp_path: Path) -> None:
    assert main(["certs", "--out", str(tmp_path), "--dns", "*.ns.svc", "--dns", "a_b.example"]) == 0


def test_certificates_are_made_at_the_clock_they_are_given() -> None:
    """The self-managed renewal decides with an injected clock: what it issues must agree with it."""
    from webhook.certmanager import Settings, issue_bundle

    then = dt.datetime(2031, 5, 6, tzinfo=dt.UTC)
    bundle = issue_bundle(Settings(namespace="ns"), None, then)
    for cert in (bundle.ca.cert, bundle.leaf.cert):
        assert cert.not_valid_before_utc < then < cert.not_valid_after_utc
        assert then - cert.not_valid_before_utc <= dt.timedelta(minutes=5)
    assert bundle.leaf.cert.not_valid_after_utc == then + dt.timedelta(days=365)


def test_a_ca_that_expired_is_not_carried_into_a_renewed_bundle() -> None:
    from webhook import certs
    from webhook.certmanager import Bundle, Settings, issue_bundle

    now = dt.datetime.now(dt.UTC)
    ca = certs.new_ca()
    expired = certs.new_ca(validity=-dt.timedelta(minutes=1))
    still = certs.new_ca()
    previous = Bundle(ca, certs.issue(ca, "x"), expired.cert_pem + still.cert_pem)
    renewed = issue_bundle(Settings(namespace="ns"), previous, now)
    assert renewed.ca is ca
    assert renewed.previous_ca_pem == still.cert_pem


def test_serve_refuses_certificate_files_it_cannot_use_with_a_message_not_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # standalone, even in a CI pod
    good, other = tmp_path / "good", tmp_path / "other"
    assert main(["certs", "--out", str(good), "--ip", "127.0.0.1"]) == 0
    assert main(["certs", "--out", str(other), "--ip", "127.0.0.1"]) == 0
    capsys.readouterr()
    mismatched = tmp_path / "mismatched"
    mismatched.mkdir()
    (mismatched / "tls.crt").write_bytes((good / "tls.crt").read_bytes())
    (mismatched / "tls.key").write_bytes((other / "tls.key").read_bytes())
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "tls.crt").write_text("not a certificate")
    (garbage / "tls.key").write_bytes((good / "tls.key").read_bytes())
    for cert_dir, extra, said in ((mismatched, [], f"cannot use {mismatched}/tls.crt with {mismatched}/tls.key"),
                                  (garbage, [], f"cannot use {garbage}/tls.crt"),
                                  (good, ["--client-ca", str(tmp_path / "absent.crt")], "--client-ca"),
                                  (good, ["--client-name", "kube-apiserver"], "--client-name needs --client-ca")):
        assert main(["serve", "--cert-dir", str(cert_dir), "--port", "0", *extra]) == 2
        err = capsys.readouterr().err
        assert said in err
        assert "Traceback" not in err
