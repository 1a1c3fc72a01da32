"""Create the test provider's users, groups and clients from a JSON document on stdin.

Run as `python -m tests.oidc_provider.seed` with the provider's settings.
Input: {"users": [{"username", "password", "email", "groups": [...]}],
"clients": [{"client_id", "client_secret", "redirect_uris": [...]}]}.
Existing users get the given password and exactly the given groups, so a
test can move a user between groups before the next sign-in.
"""

import json
import sys

import django


def main() -> None:
    django.setup()
    from django.contrib.auth.models import Group, User
    from oauth2_provider.models import Application

    document = json.load(sys.stdin)
    for item in document.get("users", []):
        user, _ = User.objects.get_or_create(username=item["username"])
        user.email = item["email"]
        user.first_name = item.get("first_name", "")
        user.last_name = item.get("last_name", "")
        user.set_password(item["password"])
        user.save()
        groups = [Group.objects.get_or_create(name=name)[0] for name in item.get("groups", [])]
        user.groups.set(groups)
    for item in document.get("clients", []):
        Application.objects.filter(client_id=item["client_id"]).delete()
        Application.objects.create(
            name=item["client_id"],
            client_id=item["client_id"],
            client_secret=item["client_secret"],
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
            redirect_uris=" ".join(item["redirect_uris"]),
            algorithm=Application.RS256_ALGORITHM,
            skip_authorization=False,
        )


if __name__ == "__main__":
    main()
