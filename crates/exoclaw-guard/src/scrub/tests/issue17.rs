//! The formats issue 17.2 found missed, both sides: each redacted with the
//! text around it kept, and look-alikes and ordinary text left alone.

use super::{check, untouched};

#[test]
fn payment_provider_secret_keys() {
    check(
        "STRIPE: sk_live_51HxYzAbCdEfGhIjKlMnOpQr0123 done",
        "STRIPE: [REDACTED:payment_key] done",
    );
    check(
        "key=rk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "key=[REDACTED:payment_key]",
    );
    check(
        "(sk_test_4eC39HqLyjWDarjtT1zdp7dc)",
        "([REDACTED:payment_key])",
    );
    check(
        "endpoint secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw ok",
        "endpoint secret [REDACTED:payment_key] ok",
    );
    check(
        "square sq0csp-0p9h7g6f5e4d3c2b1a0Z_Yx-WvUtSrQpOnMlKjIhGfE x",
        "square [REDACTED:payment_key] x",
    );
}

#[test]
fn payment_look_alikes_stay() {
    // Publishable keys are public; prose and short ids are not keys.
    untouched("pk_live_51HxYzAbCdEfGhIjKlMnOpQr0123 is the publishable key");
    untouched("use an sk_live_ key in production, never in the browser");
    untouched("the task_live_update flag and disk_test_results table");
}

#[test]
fn chat_incoming_webhooks() {
    check(
        "posting to https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX now",
        "posting to https://hooks.slack.com/services/[REDACTED:webhook_url] now",
    );
    check(
        "https://discord.com/api/webhooks/112233445566778899/AbCdEf-GhIjKlMnOpQrStUvWxYz0123456789_abcdEFGH",
        "https://discord.com/api/webhooks/[REDACTED:webhook_url]",
    );
    check(
        "url: https://contoso.webhook.office.com/webhookb2/1a2b3c4d-0000-1111-2222-333344445555@9f8e7d6c/IncomingWebhook/abcdef0123456789/00aa11bb",
        "url: https://contoso.webhook.office.com/webhookb2/[REDACTED:webhook_url]",
    );
    check(
        "https://prod-12.westus.logic.azure.com:443/workflows/0123456789abcdef0123/triggers/manual/paths/invoke?api-version=2016-06-01&sig=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        "https://prod-12.westus.logic.azure.com:443/workflows/[REDACTED:webhook_url]",
    );
}

#[test]
fn webhook_look_alikes_stay() {
    untouched("Slack's incoming webhooks live under hooks.slack.com/services/ in the docs");
    untouched("see https://discord.com/developers/docs/resources/webhook for the API");
    untouched("https://api.slack.com/messaging/webhooks explains it");
}

#[test]
fn storage_connection_strings_with_keys() {
    check(
        "DefaultEndpointsProtocol=https;AccountName=myacct;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;EndpointSuffix=core.windows.net",
        "DefaultEndpointsProtocol=https;AccountName=myacct;AccountKey=[REDACTED:storage_key];EndpointSuffix=core.windows.net",
    );
    check(
        "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=AbCdEf0123456789AbCdEf0123456789AbCdEf01234=",
        "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=[REDACTED:storage_key]",
    );
    check(
        "BlobEndpoint=https://a.blob.core.windows.net/;SharedAccessSignature=sv=2022-11-02&ss=b&sig=AbCd%2BEf0123456789xyz%3D",
        "BlobEndpoint=https://a.blob.core.windows.net/;SharedAccessSignature=[REDACTED:storage_key]",
    );
    check(
        "GET https://a.blob.core.windows.net/c/f.txt?sv=2022-11-02&se=2026-01-01&sp=r&sig=AbCd%2BEf0123456789xyz%3D HTTP/1.1",
        "GET https://a.blob.core.windows.net/c/f.txt?sv=2022-11-02&se=2026-01-01&sp=r&sig=[REDACTED:storage_key] HTTP/1.1",
    );
}

#[test]
fn storage_look_alikes_stay() {
    untouched("DefaultEndpointsProtocol=https;AccountName=myacct;EndpointSuffix=core.windows.net");
    untouched("the AccountKey field holds the storage key; set it in the vault");
    untouched("a signature (sig) is appended to the SAS URL");
}

#[test]
fn secret_named_environment_assignments() {
    check(
        "EXOCLAW_GATEWAY_TOKEN=abc123",
        "EXOCLAW_GATEWAY_TOKEN=[REDACTED:token]",
    );
    check(
        "export EXOCLAW_VAULT_KEY=\"k3y-material-here\"\nnext",
        "export EXOCLAW_VAULT_KEY=\"[REDACTED:secret]\"\nnext",
    );
    check(
        "EXOCLAW_BACKUP_KEY=zz EXOCLAW_DB_PASSWORD='pw' EXOCLAW_PORT=18789",
        "EXOCLAW_BACKUP_KEY=[REDACTED:secret] EXOCLAW_DB_PASSWORD='[REDACTED:password]' EXOCLAW_PORT=18789",
    );
    check(
        "STRIPE_WEBHOOK_SECRET=s",
        "STRIPE_WEBHOOK_SECRET=[REDACTED:secret]",
    );
}

#[test]
fn environment_look_alikes_stay() {
    untouched("EXOCLAW_PORT=18789 EXOCLAW_HOST=127.0.0.1 RUST_LOG=debug");
    untouched("MAX_TOKENS=4096 KEY_COUNT=3 KEYBOARD_LAYOUT=us");
    untouched("EXOCLAW_TOKEN_TTL_SEC=3600 EXOCLAW_KEY_ROTATION_DAYS=30");
    untouched("set EXOCLAW_VAULT_KEY in .env, never in config.json");
}

#[test]
fn url_userinfo_both_sides() {
    check(
        "clone https://ghp_AbCdEfGhIjKlMnOp0123@github.com/o/r.git",
        "clone https://[REDACTED:url_password]@github.com/o/r.git",
    );
    check(
        "amqp://guest:guest@rabbit:5672/vhost",
        "amqp://[REDACTED:url_password]@rabbit:5672/vhost",
    );
    untouched("ssh://git@github.com/org/repo.git");
    untouched("https://example.com/users/@alice/posts");
    untouched("postgres://db.internal:5432/app");
}
