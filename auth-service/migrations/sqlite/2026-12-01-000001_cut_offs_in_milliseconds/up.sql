-- User cut-offs in the outbox count milliseconds since the epoch (they counted seconds), so
-- that tokens issued within the same second on either side of a cut-off are told apart.
UPDATE revocations SET not_before = not_before * 1000 WHERE kind = 'user';
