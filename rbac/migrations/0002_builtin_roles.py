"""Create the built-in roles Owner, Admin, Member and Viewer."""

from django.db import migrations

from rbac.choices import BUILTIN_ROLES


def create_builtin_roles(apps, schema_editor):
    Role = apps.get_model("rbac", "Role")
    for slug, (name, permissions) in BUILTIN_ROLES.items():
        Role.objects.update_or_create(
            slug=slug, project=None, defaults={"name": name, "permissions": list(permissions), "is_builtin": True}
        )


class Migration(migrations.Migration):
    dependencies = [("rbac", "0001_initial")]

    operations = [migrations.RunPython(create_builtin_roles, migrations.RunPython.noop)]
