-- Reverts exoclaw schema 11.

DROP TABLE IF EXISTS handoffs;
DROP TABLE IF EXISTS team_mail_reads;
DROP TABLE IF EXISTS team_mail;
DROP TABLE IF EXISTS team_task_comments;
DROP TABLE IF EXISTS team_task_deps;
DROP TABLE IF EXISTS team_tasks;
DROP TABLE IF EXISTS team_members;
DROP TABLE IF EXISTS teams;
