-- The linking service keeps its own database beside the IdP's (each has its own migrations).
CREATE DATABASE linking OWNER elk;
