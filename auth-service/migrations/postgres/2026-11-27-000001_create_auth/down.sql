DROP TABLE login_attempts;
DROP TABLE revocations;
DROP TABLE sessions;
DROP TABLE users;
