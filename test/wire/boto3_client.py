"""Drives a running Strongroom with boto3 (Debian's python3-boto3), as a Python application would.

Prints one JSON object with what it observed; test/wire/boto3.test.ts asserts on it.
Environment: STRONGROOM_ENDPOINT, AWS_SHARED_CREDENTIALS_FILE, AWS_REGION.
"""
import json
import os

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

kms = boto3.client(
    "kms",
    endpoint_url=os.environ["STRONGROOM_ENDPOINT"],
    region_name=os.environ["AWS_REGION"],
    config=Config(retries={"max_attempts": 1}),
)
seen = {}


def error_of(call):
    try:
        call()
    except ClientError as error:
        return {
            "code": error.response["Error"]["Code"],
            "message": error.response["Error"].get("Message", ""),
            "status": error.response["ResponseMetadata"]["HTTPStatusCode"],
        }
    return None


key = kms.create_key(Description="boto3 key", Tags=[{"TagKey": "team", "TagValue": "py"}])["KeyMetadata"]
seen["create_key"] = {k: key[k] for k in ("KeySpec", "KeyUsage", "KeyState", "Enabled", "Arn", "KeyId")}
seen["creation_date_type"] = type(key["CreationDate"]).__name__

kms.create_alias(AliasName="alias/boto3", TargetKeyId=key["KeyId"])
for i in range(4):
    kms.create_key(Description=f"filler {i}")
paginator = kms.get_paginator("list_keys")
listed = [entry["KeyId"] for page in paginator.paginate(PaginationConfig={"PageSize": 2}) for entry in page["Keys"]]
seen["paginated_key_count"] = len(listed)
seen["paginated_unique"] = len(set(listed)) == len(listed)

context = {"purpose": "boto3-test"}
encrypted = kms.encrypt(KeyId="alias/boto3", Plaintext=b"\x00\x01 binary \xff", EncryptionContext=context)
seen["encrypt_key_id"] = encrypted["KeyId"]
decrypted = kms.decrypt(CiphertextBlob=encrypted["CiphertextBlob"], EncryptionContext=context)
seen["round_trip"] = decrypted["Plaintext"] == b"\x00\x01 binary \xff"
seen["decrypt_key_id"] = decrypted["KeyId"]

data_key = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
seen["data_key_length"] = len(data_key["Plaintext"])
seen["data_key_round_trip"] = kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"] == data_key["Plaintext"]

other = kms.create_key()["KeyMetadata"]["KeyId"]
re_encrypted = kms.re_encrypt(
    CiphertextBlob=encrypted["CiphertextBlob"],
    SourceEncryptionContext=context,
    DestinationKeyId=other,
)
seen["re_encrypt_key_id"] = re_encrypted["KeyId"]
seen["re_encrypt_round_trip"] = kms.decrypt(CiphertextBlob=re_encrypted["CiphertextBlob"])["Plaintext"] == b"\x00\x01 binary \xff"

tampered = bytearray(encrypted["CiphertextBlob"])
tampered[-1] ^= 1
seen["tampered"] = error_of(lambda: kms.decrypt(CiphertextBlob=bytes(tampered), EncryptionContext=context))
seen["wrong_context"] = error_of(lambda: kms.decrypt(CiphertextBlob=encrypted["CiphertextBlob"]))
seen["unknown_key"] = error_of(lambda: kms.describe_key(KeyId="fake-key-id"))
seen["too_many_bytes"] = error_of(lambda: kms.generate_random(NumberOfBytes=1025))
kms.disable_key(KeyId=key["KeyId"])
seen["disabled"] = error_of(lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x"))
seen["tags"] = kms.list_resource_tags(KeyId=key["KeyId"])["Tags"]

print(json.dumps(seen))
