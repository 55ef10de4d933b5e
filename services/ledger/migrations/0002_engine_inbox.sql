-- The engine's inbox (platform migration 0002) now keeps what each command was answered, by
-- CloudEvents source and id, so the ledger's own answer table goes. No deployment predates this
-- migration (development databases are reset with the embedded broker's log).
DROP TABLE ledger.command_outcomes;

-- A decision's event position is read from the reply of the command that made it: the
-- decision remembers that command's full identity (source and id).
ALTER TABLE ledger.decisions
    DROP COLUMN event_partition,
    DROP COLUMN event_offset,
    ADD COLUMN command_source text NOT NULL DEFAULT 'ledgerbus/gateway';
ALTER TABLE ledger.decisions ALTER COLUMN command_source DROP DEFAULT;
