-- Each service owns its database (DESIGN §2); both live on the one PostgreSQL of the compose stack.
CREATE DATABASE auth;
CREATE DATABASE books;
