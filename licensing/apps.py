from django.apps import AppConfig


class LicensingConfig(AppConfig):
    name = "licensing"
    verbose_name = "Licensing"

    def ready(self) -> None:
        from licensing.signing import sign_tenant_object

        try:
            from audit import chain
        except ImportError:
            return
        # TODO: register unconditionally once audit.chain provides the hook.
        register = getattr(chain, "register_checkpoint_signer", None)
        if register is not None:
            register(
                lambda claims: sign_tenant_object(claims, typ="kp-audit-checkpoint+jwt")
            )
