from django.urls import path

from runs import views

app_name = "runs"

urlpatterns = [
    path("", views.run_queue, name="queue"),
    path("<int:run_id>/", views.run_detail, name="detail"),
    path("<int:run_id>/cancel/", views.run_cancel_view, name="cancel"),
]
