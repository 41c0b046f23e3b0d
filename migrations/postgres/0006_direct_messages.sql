-- Direct messages: a conversation of 2 to 8 people is a private channel whose dm_key is
-- its sorted member ids (comma-separated); the unique index makes the same set of people
-- always the same conversation, also under concurrent opens. dm_key is NULL for every
-- channel (NULLs are distinct). A DM's name is 'dm:<id>', which no channel name can be.
ALTER TABLE channels ADD COLUMN dm_key TEXT;
CREATE UNIQUE INDEX channels_dm_key ON channels (dm_key);
