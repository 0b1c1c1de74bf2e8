"""Verifies a Notary Project signature envelope with libraries we did not write: pycose for COSE_Sign1
(application/cose) and jwcrypto for JWS JSON (application/jose+json).

Used by tests/tests/verifiers.rs, which checks the certificate chain printed here against the gateway's root with
openssl. It must never import anything of this repository: its value is that it shares no code with our signer.

    verify_notary_envelope.py cose|jws ENVELOPE [--leaf CERT.der]

Prints one JSON object: {"verified": bool, "error": str|null, "payload": object|null, "chain": [base64 DER, ...]}.
"verified" says whether the signature verifies with the public key of the envelope's leaf certificate, or of
--leaf when given (a verification with a key the envelope does not name). The exit code is 0 whenever the
envelope could be read, so the caller judges "verified", not the exit code.
"""

import argparse
import base64
import json
import sys
import traceback

from cryptography import x509
from cryptography.hazmat.primitives import serialization


def public_pem(certificate_der):
    certificate = x509.load_der_x509_certificate(certificate_der)
    return certificate.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def verify_cose(envelope, leaf):
    from pycose.headers import X5chain
    from pycose.keys import CoseKey
    from pycose.messages import Sign1Message

    # pycose 1.1 needs cbor2 < 6, which decodes CBOR arrays as lists (scripts/tools/verifiers/requirements.txt).
    # The headers are only read: setting them would make pycose re-encode the protected header for the
    # Sig_structure instead of using the signed bytes.
    message = Sign1Message.decode(envelope)
    chain = message.uhdr.get(X5chain) or message.uhdr.get(33)
    if isinstance(chain, bytes):
        chain = [chain]
    chain = list(chain or [])
    if not chain:
        raise ValueError("the COSE envelope has no x5chain")
    message.key = CoseKey.from_pem_public_key(public_pem(leaf or chain[0]).decode())
    verified = bool(message.verify_signature())
    return verified, json.loads(message.payload), chain


def verify_jws(envelope, leaf):
    from jwcrypto import jwk, jws
    from jwcrypto.common import json_decode

    document = json_decode(envelope)
    chain = [base64.b64decode(c) for c in document.get("header", {}).get("x5c", [])]
    if not chain:
        raise ValueError("the JWS envelope has no x5c")
    protected = json_decode(base64.urlsafe_b64decode(document["protected"] + "=="))
    # The Notary headers a verifier must understand (crit): registered so jwcrypto accepts them; their meaning
    # (signing scheme, signing time, expiry) is policy, which notation checks, not this signature check.
    registry = {
        name: jws.JWSEHeaderParameter(name, True, True, None)
        for name in protected.get("crit", [])
        if name not in jws.JWSHeaderRegistry
    }
    token = jws.JWS(header_registry=registry)
    token.deserialize(envelope)
    key = jwk.JWK.from_pem(public_pem(leaf or chain[0]))
    try:
        token.verify(key, alg=protected.get("alg"))
        verified = True
    except jws.InvalidJWSSignature:
        verified = False
    payload = json.loads(base64.urlsafe_b64decode(document["payload"] + "=="))
    return verified, payload, chain


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("format", choices=["cose", "jws"])
    parser.add_argument("envelope")
    parser.add_argument("--leaf", help="verify with this DER certificate's key instead of the envelope's leaf")
    args = parser.parse_args()
    with open(args.envelope, "rb") as f:
        envelope = f.read()
    leaf = None
    if args.leaf:
        with open(args.leaf, "rb") as f:
            leaf = f.read()
    result = {"verified": False, "error": None, "payload": None, "chain": []}
    try:
        verify = verify_cose if args.format == "cose" else verify_jws
        verified, payload, chain = verify(envelope, leaf)
        result.update(verified=verified, payload=payload, chain=[base64.b64encode(c).decode() for c in chain])
    except Exception as error:  # noqa: BLE001 - any failure to verify is reported, not raised
        where = traceback.extract_tb(error.__traceback__)[-1]
        result["error"] = f"{type(error).__name__}: {error} ({where.filename}:{where.lineno})"
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
