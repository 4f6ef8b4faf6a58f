UPDATE revocations SET not_before = not_before / 1000 WHERE kind = 'user';
