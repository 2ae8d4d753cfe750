-- A small, hand-written platform database: the five platform tables as the platform has
-- them (no journey columns, no indexes), and five users whose metrics are computed by hand.
--
--   sqlite3 small.sqlite < Fixtures/sql/small-platform.sql && journey migrate --db small.sqlite
--
-- Expected metrics at now = 2025-06-15 12:00:00 UTC (window start 2025-05-16 12:00:00),
-- after a migration run at 2025-06-05 06:00:00 UTC:
--
-- user        posts  last30  followers  following  conn  organized  attended  signup_days  stage_days  onboarding  tier          role
-- 1 alice       6      3        3          2        5       2          2          164          164        true        basic         user
-- 2 bob         1      1        1          2        3       1          1            5            5        false       free          admin
-- 3 carol       2      0        2          1        3       1          1         1933         1933        true        professional  super-admin
-- 4 (NULLs)     0      0        0          1        1       0          0       missing           10      missing     missing       missing
-- 5 erin        0      0        0          0        0       0          0            0            0        true        free          user
--
-- Rows that must count for nobody: a post of user 99 and a follow 99 -> 98 (no such users),
-- an RSVP to event 42 (which does not exist).

CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, city TEXT, country TEXT, role TEXT,
    subscription_tier TEXT, is_onboarding_complete INTEGER, created_at TEXT);
CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, content TEXT, visibility TEXT, created_at TEXT);
CREATE TABLE follows (id INTEGER PRIMARY KEY, follower_id INTEGER NOT NULL, following_id INTEGER NOT NULL, created_at TEXT);
CREATE TABLE events (id INTEGER PRIMARY KEY, organizer_id INTEGER, title TEXT, city TEXT, start_date TEXT);
CREATE TABLE event_rsvps (id INTEGER PRIMARY KEY, event_id INTEGER NOT NULL, user_id INTEGER NOT NULL, status TEXT, created_at TEXT);

INSERT INTO users VALUES (1, 'alice@example.org', 'Berlin', 'DE', 'user', 'basic', 1, '2025-01-01 12:00:01');
INSERT INTO users VALUES (2, 'bob@example.org', 'Paris', 'FR', 'admin', 'free', 0, '2025-06-10 00:00:00');
INSERT INTO users VALUES (3, 'carol@example.org', 'Tokyo', 'JP', 'super-admin', 'professional', 1, '2020-02-29 08:00:00');
-- No email, no city, no role, no tier, onboarding unknown, no signup date.
INSERT INTO users VALUES (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
-- Signed up one hour before "now": zero completed days.
INSERT INTO users VALUES (5, 'erin@example.org', 'Athens', 'GR', 'user', 'free', 1, '2025-06-15 11:00:00');

-- alice: 6 posts; 3 inside the 30-day window (one a second inside its start), one a second
-- outside it, one older, one without a date (counted in posts only).
INSERT INTO posts(user_id, content, visibility, created_at) VALUES
    (1, 'a', 'public',  '2025-06-15 11:59:59'),
    (1, 'b', 'public',  '2025-06-01 09:00:00'),
    (1, 'c', 'friends', '2025-05-16 12:00:01'),
    (1, 'd', 'public',  '2025-05-16 11:59:59'),
    (1, 'e', 'public',  '2025-04-01 10:00:00'),
    (1, 'f', 'public',  NULL),
-- bob: one recent post.
    (2, 'g', 'public',  '2025-06-14 20:00:00'),
-- carol: two old posts.
    (3, 'h', 'public',  '2021-03-01 00:00:00'),
    (3, 'i', 'friends', '2024-12-24 18:00:00'),
-- nobody's.
    (99, 'j', 'public', '2025-06-10 10:00:00');

-- follower -> following. alice and bob, alice and carol follow each other both ways.
INSERT INTO follows(follower_id, following_id, created_at) VALUES
    (1, 2, '2025-06-10 01:00:00'),
    (1, 3, '2025-01-02 00:00:00'),
    (2, 1, '2025-06-10 02:00:00'),
    (2, 3, '2025-06-11 00:00:00'),
    (3, 1, '2025-01-03 00:00:00'),
    (4, 1, NULL),
-- nobody's: neither side exists.
    (99, 98, '2025-06-10 00:00:00');

INSERT INTO events(id, organizer_id, title, city, start_date) VALUES
    (1, 1,    'Past milonga',   'Berlin', '2025-05-01 20:00:00'),
    (2, 1,    'Future milonga', 'Berlin', '2025-07-01 20:00:00'),
    (3, 2,    'Practica now',   'Paris',  '2025-06-15 12:00:00'),
    (4, NULL, 'Festival TBA',   'Athens', NULL),
    (5, 3,    'Old marathon',   'Tokyo',  '2024-11-11 11:00:00');

INSERT INTO event_rsvps(event_id, user_id, status, created_at) VALUES
-- alice: attended 1 (past) and 3 (starts exactly at now); not 2 (future), 5 (maybe),
-- 4 (no start date), 42 (no such event).
    (1, 1, 'going',     '2025-04-20 00:00:00'),
    (2, 1, 'going',     '2025-06-01 00:00:00'),
    (3, 1, 'going',     '2025-06-14 00:00:00'),
    (5, 1, 'maybe',     '2024-11-01 00:00:00'),
    (4, 1, 'going',     '2025-06-01 00:00:00'),
    (42, 1, 'going',    '2025-06-01 00:00:00'),
-- bob: attended 1; not 5 (not_going), not 2 (future).
    (1, 2, 'going',     '2025-04-21 00:00:00'),
    (5, 2, 'not_going', '2024-11-02 00:00:00'),
    (2, 2, 'going',     '2025-06-12 00:00:00'),
-- carol: attended 5; not 1 (maybe).
    (5, 3, 'going',     '2024-11-01 00:00:00'),
    (1, 3, 'maybe',     '2025-04-22 00:00:00'),
-- user 4: a maybe only.
    (1, 4, 'maybe',     NULL);
