from django.urls import path

from evaluator import views, views_manage

app_name = "evaluator"

urlpatterns = [
    path("", views.evaluator_index, name="index"),
    path("datasets/new/", views.dataset_new, name="dataset_new"),
    path("datasets/<int:dataset_id>/", views.dataset_detail, name="dataset"),
    path("datasets/<int:dataset_id>/edit/", views_manage.dataset_edit, name="dataset_edit"),
    path("datasets/<int:dataset_id>/delete/", views_manage.dataset_delete_view, name="dataset_delete"),
    path("datasets/<int:dataset_id>/v<int:number>/rows/new/", views.dataset_row_form, name="row_new"),
    path("datasets/<int:dataset_id>/v<int:number>/rows/<int:position>/", views.dataset_row_form, name="row_edit"),
    path("endpoints/new/", views.endpoint_new, name="endpoint_new"),
    path("endpoints/<int:endpoint_id>/edit/", views.endpoint_edit, name="endpoint_edit"),
    path("endpoints/<int:endpoint_id>/delete/", views_manage.endpoint_delete_view, name="endpoint_delete"),
    path("embeddings/new/", views.embedding_new, name="embedding_new"),
    path("endpoints/<int:endpoint_id>/check/", views.endpoint_check_view, name="endpoint_check"),
    path("runs/new/", views.run_new, name="run_new"),
    path("runs/<int:run_id>/", views.run_detail, name="run"),
    path("runs/<int:run_id>/status/", views.run_status, name="run_status"),
    path("runs/<int:run_id>/samples/", views.run_samples, name="run_samples"),
    path("runs/<int:run_id>/export.<str:fmt>", views.run_export, name="run_export"),
    path("scores/<int:score_id>/review/", views.score_review, name="score_review"),
    path("compare/", views.runs_compare_view, name="compare"),
]
