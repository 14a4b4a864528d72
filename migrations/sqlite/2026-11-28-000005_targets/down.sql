DROP TABLE target_health;
DROP TABLE targets_generation;
DROP TABLE targets;
