"""Flask extensions, created unbound and attached in :func:`idp.create_app`."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from idp.adapters.sql.models import Base

# expire_on_commit=False: a use case commits once at its end (idp.adapters.sql.uow); what it
# loaded stays usable afterwards instead of being reloaded attribute by attribute.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
csrf = CSRFProtect()
