"""The feedback service: who to tell, when and how; notifications; the story of change."""
