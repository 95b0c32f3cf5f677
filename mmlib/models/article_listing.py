"""The PyTorch listing of the article's section 5.2, exactly as printed (do not edit).

It cannot run: see chapter 5 and :mod:`mmlib.models.article_model` for the fix.
"""

import torch
import torch.nn as nn

# 文本处理模块
class TextModule(nn.Module):
    def __init__(self):
        super(TextModule, self).__init__()
        self.embedding = nn.Embedding(10000, 256)
        self.rnn = nn.GRU(256, 512)

    def forward(self, x):
        x = self.embedding(x)
        x, _ = self.rnn(x)
        return x

# 图像处理模块
class ImageModule(nn.Module):
    def __init__(self):
        super(ImageModule, self).__init__()
        self.conv = nn.Conv2d(3, 64, 3, 1, 1)
        self.fc = nn.Linear(64*32*32, 512)

    def forward(self, x):
        x = self.conv(x)
        x = x.view(x.size(0), -1)
        x = self.fc(x)
        return x

# 融合模块
class FusionModule(nn.Module):
    def __init__(self):
        super(FusionModule, self).__init__()
        self.fc = nn.Linear(1024, 512)

    def forward(self, x1, x2):
        x = torch.cat([x1, x2], dim=1)
        x = self.fc(x)
        return x

# 多模态大模型
class MultiModalModel(nn.Module):
    def __init__(self):
        super(MultiModalModel, self).__init__()
        self.text_module = TextModule()
        self.image_module = ImageModule()
        self.fusion_module = FusionModule()

    def forward(self, text, image):
        text = self.text_module(text)
        image = self.image_module(image)
        output = self.fusion_module(text, image)
        return output
