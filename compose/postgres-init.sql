CREATE DATABASE prefect;
CREATE DATABASE warehouse;
CREATE DATABASE meta;  -- the control plane's store (service meta)
