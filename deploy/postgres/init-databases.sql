-- One database per service in production-like deployments.
CREATE DATABASE intake;
CREATE DATABASE insight;
CREATE DATABASE priority;
CREATE DATABASE feedback;
