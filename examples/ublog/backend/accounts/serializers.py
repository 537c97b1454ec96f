from django.contrib.auth import authenticate, password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from .models import User


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ("id", "email", "name")


class EmailLoginSerializer(serializers.Serializer):
    """Email + password. `username` is accepted as another name for `email`, so clients written
    for DRF's stock token view keep working."""

    email = serializers.CharField(required=False)
    username = serializers.CharField(required=False, write_only=True)
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)

    def validate(self, attrs):
        email = (attrs.get("email") or attrs.get("username") or "").strip().lower()
        if not email:
            raise serializers.ValidationError({"email": "This field is required."})
        user = authenticate(self.context.get("request"), username=email, password=attrs["password"])
        if user is None:
            raise serializers.ValidationError("Unable to log in with these credentials.", code="authorization")
        attrs["user"] = user
        return attrs


class RegisterSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(write_only=True, trim_whitespace=False)
    name = serializers.CharField(required=False, allow_blank=True, max_length=100)

    def validate_email(self, value):
        value = value.strip().lower()
        if User.objects.filter(email=value).exists():
            raise serializers.ValidationError("A user with this email already exists.")
        return value

    def validate(self, attrs):
        try:
            password_validation.validate_password(attrs["password"], User(email=attrs["email"]))
        except DjangoValidationError as error:
            raise serializers.ValidationError({"password": list(error.messages)})
        return attrs

    def create(self, validated):
        return User.objects.create_user(validated["email"], validated["password"], name=validated.get("name", ""))
