"""Callables for the Airflow secret test; imported by Airflow workers."""


def check_token(api_key: str) -> None:
    if api_key != "it-s3cr3t-value":
        raise ValueError("the secret reference was not resolved")
