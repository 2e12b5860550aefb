"""The node's two services, ``~/predict`` and ``~/describe``: a prediction or a scene answer
on the request's inputs, or on the latest ones received. A bad request, or a model busy past
``service_timeout_s``, gets ``success`` false and a message; nothing a request carries ends the
node."""

from __future__ import annotations

from typing import Any

from grasp_semantics.ros.conversions import ConversionError, image_to_rgb
from grasp_semantics.ros.node_inputs import camera_info_given, cloud_given, image_given
from grasp_semantics.ros.sync import Busy
from grasp_semantics.srv import DescribeScene, PredictGrasps


class NodeServices:
    """The service callbacks of :class:`grasp_semantics.ros.node.GraspSemanticsNode`, which
    holds the state they read: whether it is active, the latest inputs and camera_infos, the
    predictor, the model thread, the parameters, and its reporting."""

    _describer: Any  # the describe head, attached to the predictor's backbone on first use

    def _on_predict(
        self, request: PredictGrasps.Request, response: PredictGrasps.Response
    ) -> PredictGrasps.Response:
        """On-demand prediction on the request's inputs, or the latest received ones."""
        try:
            return self._serve_predict(request, response)
        except Exception as error:  # a request never ends the node
            response.success = False
            response.message = self._report_failure("~/predict failed", error)
            return response

    def _serve_predict(
        self, request: PredictGrasps.Request, response: PredictGrasps.Response
    ) -> PredictGrasps.Response:
        if not self._active:
            response.success, response.message = False, "node is not active"
            return response
        image = request.image if image_given(request.image) else self._latest_image
        cloud = request.cloud if cloud_given(request.cloud) else self._latest_cloud
        info = request.camera_info if camera_info_given(request.camera_info) else None
        info = info or (None if image is None else self.camera_infos.for_image(image))
        if image is None or cloud is None:
            missing = "image" if image is None else "cloud"
            response.success = False
            response.message = f"no {missing} in the request and none received yet"
            return response
        if request.instruction:
            error = self._instruction_error(request.instruction)
            if error:
                response.success, response.message = False, f"instruction rejected: {error}"
                return response
        message, why = self._predict(
            image,
            cloud,
            info,
            request.instruction,
            request.max_grasps,
            timeout=self._param("service_timeout_s"),
        )
        if message is None:
            response.success, response.message = False, why
            return response
        response.success, response.prediction = True, message
        return response

    def _on_describe(
        self, request: DescribeScene.Request, response: DescribeScene.Response
    ) -> DescribeScene.Response:
        """Caption / OCR / VQA on the request's image, or the latest one received, through the
        loaded backbone (``inference/scene_questions.py``); a bad request gets success=false."""
        from grasp_semantics.data.questions import corpus
        from grasp_semantics.inference.scene_questions import (
            attach_describer,
            check_request,
            describe,
        )

        response.success = False
        image = request.image if image_given(request.image) else self._latest_image
        try:
            check_request(request.task, request.prompt, 1)
            if not self._active:
                raise ValueError("node is not active")
            if image is None:
                raise ValueError("no image in the request and none received yet")
            rgb = image_to_rgb(image)

            def answer() -> Any:  # on the model thread
                if self.predictor is None:
                    raise ValueError("no model loaded")
                if self._describer is None:
                    self._describer = attach_describer(
                        self.predictor.model, self._param("model"), corpus()
                    )
                return describe(self._describer, rgb, request.task, request.prompt)

            result = self._model.call(answer, timeout=self._param("service_timeout_s"))
        except Busy as error:
            response.message = f"busy: {error}"
            self.get_logger().warning(response.message)
            return response
        except (ConversionError, ValueError, FileNotFoundError) as error:
            response.message = f"describe rejected: {error}"
            self.get_logger().warning(response.message)
            return response
        except Exception as error:  # a request never ends the node
            response.message = self._report_failure("~/describe failed", error)
            return response
        response.success, response.answer = True, result.answer
        response.confidence = result.confidence
        return response
