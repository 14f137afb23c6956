"""Facts about Rigetti QCS that every side of qcs-jupyter uses: where QCS lives and how long its logins last.

The defaults a QCS client falls back to (pyQuil, qcs-sdk-python) and what QCS's identity provider (Okta) grants.
"""

#: QCS's REST and gRPC APIs, as the QCS clients default to them.
QCS_API_URL = "https://api.qcs.rigetti.com"
QCS_GRPC_API_URL = "https://grpc.qcs.rigetti.com"
#: QCS's OpenID Connect issuer (Okta authorization server) and the public client id its tools use.
QCS_ISSUER = "https://auth.qcs.rigetti.com/oauth2/aus8jcovzG0gW2TUG355"
QCS_CLIENT_ID = "0oa3ykoirzDKpkfzk357"
#: The audience of QCS access tokens; pyQuil's credential core refuses others.
QCS_AUDIENCE = "api://qcs"
#: A QCS refresh token lasts this many days from the login; then the user must log in again.
REFRESH_TOKEN_LIFETIME_DAYS = 90
#: qcs-jupyter's default for when to start warning that the login ends (days before those 90): one place for the
#: Hub (admin page, metrics), the server (status) and the CLI.
REFRESH_TOKEN_WARNING_DAYS = 7
