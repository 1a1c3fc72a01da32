from django.apps import AppConfig


class LicensingConfig(AppConfig):
    name = "licensing"
    verbose_name = "Licensing"

    def ready(self) -> None:
        from audit import chain
        from licensing.signing import audit_key_certificates, audit_key_set, sign_tenant_object

        def checkpoint_sign(claims: dict) -> str:  # type: ignore[type-arg]
            return sign_tenant_object(claims, typ="kp-audit-checkpoint+jwt")

        chain.register_checkpoint_signer(checkpoint_sign)
        chain.register_key_set_provider(audit_key_set, certificates=audit_key_certificates)
