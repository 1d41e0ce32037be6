-- exoclaw schema 18: budget reservations.
--
-- A call under a budget reserves its worst-case cost (input tokens counted,
-- output capped by max_tokens) before it is sent; the reservation is deleted
-- when the call's usage is recorded, in the same transaction, or when it
-- fails. Budget sums add the live reservations (expires_at in the future:
-- a gateway that died mid-call leaves one that lapses) to the ledger, so
-- concurrent calls, also from other gateways on the same database, cannot
-- overshoot a limit.
CREATE TABLE budget_reservations (
    id           TEXT    NOT NULL PRIMARY KEY,
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    at           BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    model        TEXT    NOT NULL,
    agent_id     TEXT,
    user_id      TEXT,
    cost_micros  BIGINT  NOT NULL,
    tokens       BIGINT  NOT NULL
);

CREATE INDEX budget_reservations_tenant_expires ON budget_reservations (tenant_id, expires_at);
