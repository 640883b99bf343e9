-- The war room's name is chosen by the chat platform's adapter when it creates the room (a
-- Teams war room has no channel name): the incident no longer stores a planned channel name.
ALTER TABLE incidents DROP COLUMN channel_name;
