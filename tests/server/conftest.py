import pytest


@pytest.fixture
def jp_server_config(jp_server_config):
    return {
        "ServerApp": {
            "jpserver_extensions": {"qcs_jupyter": True},
            "allow_unauthenticated_access": False,
        }
    }
